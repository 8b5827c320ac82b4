"""Counted choices: the submission a student marked as the one that counts, on an assessment
whose TOML says counts = "chosen" (one row per student and assessment)

Revision ID: 0010_counted_choices
Revises: 0009_account_links
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0010_counted_choices'
down_revision = '0009_account_links'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'counted_choices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('assessment', sa.String(length=100), nullable=False),
        sa.Column('submission_id', sa.Integer(), nullable=False),
        sa.Column('chosen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['submission_id'], ['submissions.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'assessment'),
    )


def downgrade() -> None:
    op.drop_table('counted_choices')
