"""Schema migrations applied step by step on both backends, with rows written by the older schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session

from app.store.db import alembic_config, make_engine

from .conftest import _admin


@pytest.fixture(params=["sqlite", "postgres"])
def blank_db_url(request, tmp_path: Path) -> str:
    """An empty database (no migration applied) on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'grader.db'}"
        make_engine(url).dispose()  # creates the data folder
        yield url
        return
    base = request.getfixturevalue("pg_cluster")
    name = "m_" + uuid.uuid4().hex[:12]
    _admin(base, f"CREATE DATABASE {name}")
    yield base.format(db=name)
    _admin(base, f"DROP DATABASE {name} WITH (FORCE)")


def test_jobs_queued_before_suites_existed_become_hw1p1_jobs_and_new_jobs_must_name_one(blank_db_url):
    command.upgrade(alembic_config(blank_db_url), "0001")
    now = datetime(2026, 2, 1, tzinfo=UTC).replace(tzinfo=None)
    engine = make_engine(blank_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (id, username, display_name, email, role, nickname, active, "
                                 "created_at) VALUES (1, 'alice', '', '', 'student', 'n1', true, :t)"), {"t": now})
            conn.execute(sa.text("INSERT INTO blobs (sha256, size, data, created_at) VALUES ('ab', 1, :d, :t)"),
                         {"d": b"x", "t": now})
            conn.execute(sa.text("INSERT INTO submissions (id, user_id, assessment, version, blob_sha256, filename, "
                                 "received_at, status) VALUES (1, 1, 'hw1p1', 1, 'ab', 'h.tar', :t, 'queued')"),
                         {"t": now})
            conn.execute(sa.text("INSERT INTO jobs (id, submission_id, kind, priority, state, attempts, "
                                 "max_attempts, queued_at) VALUES (1, 1, 'submit', 0, 'queued', 0, 3, :t)"),
                         {"t": now})
        command.upgrade(alembic_config(blank_db_url), "head")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT suite FROM jobs WHERE id = 1")).scalar_one() == "hw1p1"
        # No default remains: a job that names no suite is refused by the database itself.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO jobs (id, submission_id, kind, priority, state, attempts, "
                                 "max_attempts, queued_at) VALUES (2, 1, 'submit', 0, 'queued', 0, 3, :t)"),
                         {"t": now})
    finally:
        engine.dispose()


def test_similarity_reports_stored_before_the_archive_still_read(blank_db_url):
    """0006 adds the compared submissions to reports, the archive and reviews; a report stored before
    keeps reading (no submissions known: names only, no links)."""
    from app.course import similarity_reports as reports
    from app.store.models import SimilarityReport

    command.upgrade(alembic_config(blank_db_url), "0005_web_security")
    now = datetime(2026, 2, 1, tzinfo=UTC).replace(tzinfo=None)
    engine = make_engine(blank_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO similarity_reports (id, assessment, state, threshold, done, total, "
                                 "created_at, updated_at) VALUES (1, 'hw1p1', 'failed', 0.5, 0, 0, :t, :t)"),
                         {"t": now})
        command.upgrade(alembic_config(blank_db_url), "head")
        with Session(engine) as s:
            view = reports.view(s.get(SimilarityReport, 1), with_body=True)
        assert view.state == "failed" and view.submissions == {} and view.report is None
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO similarity_archive (assessment, source, name, files, left_out, "
                                 "added_at) VALUES ('hw1p1', 'F24', 'sam', '{}', '', :t)"), {"t": now})
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(sa.text("INSERT INTO similarity_archive (assessment, source, name, files, left_out, "
                                     "added_at) VALUES ('hw1p1', 'F24', 'sam', '{}', '', :t)"), {"t": now})
    finally:
        engine.dispose()


def test_an_activation_link_sent_before_account_links_existed_still_works_once(blank_db_url):
    from app.auth import accounts
    command.upgrade(alembic_config(blank_db_url), "0008_state_checks")
    now = datetime(2026, 2, 1, tzinfo=UTC).replace(tzinfo=None)
    engine = make_engine(blank_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (id, username, display_name, email, role, nickname, active, "
                                 "created_at, activation_hash) VALUES (1, 'sam', 'Sam', '', 'student', 'n1', true, "
                                 ":t, :h)"), {"t": now, "h": accounts.hash_token("sent-in-january")})
        command.upgrade(alembic_config(blank_db_url), "head")
        with Session(engine) as s, s.begin():
            assert accounts.check_link(s, "sent-in-january").state == accounts.LinkState.OPEN
            assert accounts.use_link(s, "sent-in-january", "a-new-password").username == "sam"
        with Session(engine) as s:
            assert accounts.check_link(s, "sent-in-january").state == accounts.LinkState.USED
        command.downgrade(alembic_config(blank_db_url), "0008_state_checks")   # and back, for a rollback
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT activation_hash FROM users")).scalar_one() is None
    finally:
        engine.dispose()


def test_score_adjustments_are_added_to_a_database_with_submissions_and_removed_again(blank_db_url):
    """0011 adds the adjustments table beside existing submissions; downgrading drops only it."""
    command.upgrade(alembic_config(blank_db_url), "0010_counted_choices")
    now = datetime(2026, 2, 1, tzinfo=UTC).replace(tzinfo=None)
    engine = make_engine(blank_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (id, username, display_name, email, role, nickname, active, "
                                 "created_at) VALUES (1, 'tina', '', '', 'ta', 'n1', true, :t)"), {"t": now})
            conn.execute(sa.text("INSERT INTO blobs (sha256, size, data, created_at) VALUES ('ab', 1, :d, :t)"),
                         {"d": b"x", "t": now})
            conn.execute(sa.text("INSERT INTO submissions (id, user_id, assessment, version, blob_sha256, filename, "
                                 "received_at, status, score) VALUES (1, 1, 'hw1p1', 1, 'ab', 'h.tar', :t, "
                                 "'graded', 60)"), {"t": now})
        command.upgrade(alembic_config(blank_db_url), "head")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO score_adjustments (submission_id, points, reason, comment, created_by, "
                                 "created_at) VALUES (1, 3, 'partial credit', '', 1, :t)"), {"t": now})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:   # it must name a submission
            conn.execute(sa.text("INSERT INTO score_adjustments (submission_id, points, reason, comment, created_by, "
                                 "created_at) VALUES (99, 3, 'x', '', 1, :t)"), {"t": now})
        command.downgrade(alembic_config(blank_db_url), "0010_counted_choices")
        with engine.connect() as conn:
            assert "score_adjustments" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT score FROM submissions WHERE id = 1")).scalar_one() == 60
    finally:
        engine.dispose()
