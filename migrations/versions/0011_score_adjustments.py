"""score_adjustments: a TA's points adjustment of one submission, with a reason, a comment for the
student, who and when (every change a new row)

Revision ID: 0011_score_adjustments
Revises: 0010_counted_choices
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

import app.store.models

revision = '0011_score_adjustments'
down_revision = '0010_counted_choices'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('score_adjustments',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('submission_id', sa.Integer(), nullable=False),
                    sa.Column('points', sa.Integer(), nullable=False),
                    sa.Column('reason', sa.Text(), nullable=False),
                    sa.Column('comment', sa.Text(), nullable=False),
                    sa.Column('created_by', sa.Integer(), nullable=False),
                    sa.Column('created_at', app.store.models.UTCDateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
                    sa.ForeignKeyConstraint(['created_by'], ['users.id']),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_score_adjustments_submission_id', 'score_adjustments', ['submission_id'])


def downgrade() -> None:
    op.drop_index('ix_score_adjustments_submission_id', table_name='score_adjustments')
    op.drop_table('score_adjustments')
