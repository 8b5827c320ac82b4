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
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by rebuilding it (copy, drop, rename), which foreign keys would
            # refuse while other tables point at it; the switch works only outside a transaction,
            # so it is thrown on the raw connection, and the keys are checked once at the end.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if dangling:
                    raise RuntimeError(f"the migration left rows pointing at nothing: {dangling[:5]}")
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
