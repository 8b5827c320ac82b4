"""similarity archive (earlier handins compared with the class), reviewed pairs, the submissions a report compared

Revision ID: 0006_similarity_archive
Revises: 0005_web_security
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

import app.store.models

revision = '0006_similarity_archive'
down_revision = '0005_web_security'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('similarity_reports') as batch:
        batch.add_column(sa.Column('submissions', sa.Text(), nullable=True))
    op.create_table('similarity_archive',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('assessment', sa.String(length=100), nullable=False),
                    sa.Column('source', sa.String(length=100), nullable=False),
                    sa.Column('name', sa.String(length=200), nullable=False),
                    sa.Column('files', sa.Text(), nullable=False),
                    sa.Column('left_out', sa.Text(), nullable=False),
                    sa.Column('added_by', sa.Integer(), nullable=True),
                    sa.Column('added_at', app.store.models.UTCDateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['added_by'], ['users.id']),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('assessment', 'source', 'name'))
    op.create_index(op.f('ix_similarity_archive_assessment'), 'similarity_archive', ['assessment'], unique=False)
    op.create_table('similarity_reviews',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('assessment', sa.String(length=100), nullable=False),
                    sa.Column('a', sa.String(length=100), nullable=False),
                    sa.Column('b', sa.String(length=320), nullable=False),
                    sa.Column('reviewed_by', sa.Integer(), nullable=True),
                    sa.Column('reviewed_at', app.store.models.UTCDateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['reviewed_by'], ['users.id']),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('assessment', 'a', 'b'))
    op.create_index(op.f('ix_similarity_reviews_assessment'), 'similarity_reviews', ['assessment'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_similarity_reviews_assessment'), table_name='similarity_reviews')
    op.drop_table('similarity_reviews')
    op.drop_index(op.f('ix_similarity_archive_assessment'), table_name='similarity_archive')
    op.drop_table('similarity_archive')
    with op.batch_alter_table('similarity_reports') as batch:
        batch.drop_column('submissions')
