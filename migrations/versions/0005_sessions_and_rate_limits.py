"""session generations (logout and password changes end sessions) and shared rate-limit hits

Revision ID: 0005_web_security
Revises: 0004_result_reuse
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_web_security'
down_revision = '0004_result_reuse'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('session_generation', sa.Integer(), nullable=False, server_default='0'))
    op.create_table('rate_limit_hits',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('key', sa.String(length=64), nullable=False),
                    sa.Column('at', sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_rate_limit_hits_key_at', 'rate_limit_hits', ['key', 'at'])
    op.create_index('ix_rate_limit_hits_at', 'rate_limit_hits', ['at'])


def downgrade() -> None:
    op.drop_index('ix_rate_limit_hits_at', table_name='rate_limit_hits')
    op.drop_index('ix_rate_limit_hits_key_at', table_name='rate_limit_hits')
    op.drop_table('rate_limit_hits')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('session_generation')
