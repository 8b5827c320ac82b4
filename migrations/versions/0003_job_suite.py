"""jobs name their grading suite

Revision ID: 0003_job_suite
Revises: 0002_similarity
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_job_suite'
down_revision = '0002_similarity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every job queued before this revision was an HW1P1 job: the only suite there was.
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suite', sa.String(length=40), nullable=False,
                                      server_default='hw1p1'))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.alter_column('suite', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('suite')
