"""grading_code: the reuse key of the grading code each worker runs, announced at its start

Revision ID: 0007_grading_code
Revises: 0006_similarity_archive
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

import app.store.models

revision = '0007_grading_code'
down_revision = '0006_similarity_archive'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('grading_code',
                    sa.Column('worker', sa.String(length=100), nullable=False),
                    sa.Column('reuse_key', sa.String(length=64), nullable=False),
                    sa.Column('announced_at', app.store.models.UTCDateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('worker'))
    op.create_index('ix_grading_code_announced_at', 'grading_code', ['announced_at'])


def downgrade() -> None:
    op.drop_index('ix_grading_code_announced_at', table_name='grading_code')
    op.drop_table('grading_code')
