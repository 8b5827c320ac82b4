"""similarity reports

Revision ID: 0002_similarity
Revises: 0001
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

import app.store.models

revision = '0002_similarity'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('similarity_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assessment', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('created_at', app.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['requested_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_similarity_reports_assessment'), 'similarity_reports', ['assessment'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_similarity_reports_assessment'), table_name='similarity_reports')
    op.drop_table('similarity_reports')
