"""Account links: activation and password-reset links in one table that records who issued each,
when it expires, and when it was used or replaced (users.activation_hash moves there)

Revision ID: 0009_account_links
Revises: 0008_state_checks
Create Date: 2026-12-08
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0009_account_links'
down_revision = '0008_state_checks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'account_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=20), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('issued_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('replaced_at', sa.DateTime(timezone=True), nullable=True),
        # the values as of this revision, written out (a migration must not change when the enum does)
        sa.CheckConstraint("purpose IN ('activation', 'password_reset')", name='ck_account_links_purpose'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['issued_by'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    with op.batch_alter_table('account_links') as batch:
        batch.create_index(batch.f('ix_account_links_user_id'), ['user_id'], unique=False)
    # Links sent before this revision keep working: each becomes an open activation link.
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('activation_hash', sa.String))
    links = sa.table('account_links', sa.column('user_id', sa.Integer), sa.column('purpose', sa.String),
                     sa.column('token_hash', sa.String), sa.column('created_at', sa.DateTime(timezone=True)))
    conn = op.get_bind()
    now = datetime.now(UTC)
    if conn.dialect.name == 'sqlite':   # the app stores naive UTC there (store.models.UTCDateTime)
        now = now.replace(tzinfo=None)
    rows = conn.execute(sa.select(users.c.id, users.c.activation_hash)
                        .where(users.c.activation_hash.is_not(None))).all()
    if rows:
        conn.execute(links.insert(), [{'user_id': uid, 'purpose': 'activation', 'token_hash': h,
                                       'created_at': now} for uid, h in rows])
    with op.batch_alter_table('users') as batch:
        batch.drop_index(batch.f('ix_users_activation_hash'))
        batch.drop_column('activation_hash')


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('activation_hash', sa.String(length=64), nullable=True))
        batch.create_index(batch.f('ix_users_activation_hash'), ['activation_hash'], unique=False)
    conn = op.get_bind()
    conn.execute(sa.text(
        "UPDATE users SET activation_hash = (SELECT token_hash FROM account_links WHERE account_links.user_id = "
        "users.id AND purpose = 'activation' AND used_at IS NULL AND replaced_at IS NULL "
        "ORDER BY id DESC LIMIT 1)"))
    op.drop_table('account_links')
