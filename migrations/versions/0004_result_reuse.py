"""results record what an identical resubmission may reuse

Revision ID: 0004_result_reuse
Revises: 0003_job_suite
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_result_reuse'
down_revision = '0003_job_suite'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reuse_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reused_from', sa.Integer(), nullable=True))
        batch_op.create_index('ix_results_reuse_key', ['reuse_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_index('ix_results_reuse_key')
        batch_op.drop_column('reused_from')
        batch_op.drop_column('reuse_key')
