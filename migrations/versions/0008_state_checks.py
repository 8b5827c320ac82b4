"""CHECK constraints: every state column holds one of its enum's values (app/store/states.py)

Revision ID: 0008_state_checks
Revises: 0007_grading_code
Create Date: 2026-12-07
"""
from alembic import op

revision = '0008_state_checks'
down_revision = '0007_grading_code'
branch_labels = None
depends_on = None

# On SQLite each batch rebuilds its table; migrations/env.py lets other tables' rows point at it
# meanwhile.

# The values as of this revision, written out: a migration must not change when the enums do.
CHECKS = {
    'submissions': [('ck_submissions_status', "status IN ('queued', 'running', 'graded', 'error')")],
    'jobs': [('ck_jobs_state', "state IN ('queued', 'running', 'done', 'failed')"),
             ('ck_jobs_kind', "kind IN ('submit', 'regrade', 'reuse')")],
    'similarity_reports': [('ck_similarity_reports_state', "state IN ('queued', 'running', 'done', 'failed')")],
}


def upgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, sql in checks:
                batch.create_check_constraint(name, sql)


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, _ in checks:
                batch.drop_constraint(name, type_='check')
