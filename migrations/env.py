"""Alembic environment: the URL is the one `grader db upgrade` passes, else the app's settings."""

from alembic import context

from app.store.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from app.settings import Settings
    url = Settings().db_url


def run_migrations_online() -> None:
    from app.store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
