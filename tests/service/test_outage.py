"""A database that cannot be reached answers 503 (JSON for the API, a short page for the web),
never 500, and leaves nothing half-stored. The real Postgres outage is in tests/deploy; here the
failures are injected where the real ones surface (SQLAlchemy wrapping the driver's error)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from app.grading import queue
from app.store.db import Database
from app.store.models import Blob, Job, Submission

LOCKED = sa_exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
PG_DOWN = sa_exc.OperationalError("SELECT 1", {}, psycopg.OperationalError(
    "connection failed: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused"))


def raiser(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


def stored(service) -> tuple[int, int, int]:
    with service.db.read_session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Submission, Blob, Job))


@pytest.mark.parametrize("failure", [LOCKED, PG_DOWN], ids=["sqlite-locked", "postgres-down"])
def test_an_upload_that_fails_mid_transaction_is_a_503_and_stores_nothing(service, good_tar, monkeypatch, failure):
    # The blob and the submission row are already flushed when enqueuing fails.
    monkeypatch.setattr(queue, "enqueue", raiser(failure))
    r = service.submit("alice", "open", good_tar)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "database_unavailable" and r.json()["message"]
    assert int(r.headers["Retry-After"]) > 0
    monkeypatch.undo()
    assert stored(service) == (0, 0, 0)
    assert service.submit("alice", "open", good_tar).status_code == 202   # and it works again


def test_reads_during_an_outage_are_503_for_the_api_and_for_pages(service, monkeypatch):
    monkeypatch.setattr(Database, "read_session", raiser(PG_DOWN))
    monkeypatch.setattr(Database, "session", raiser(PG_DOWN))
    r = service.get("alice", "/api/v1/assessments/open/submissions")
    assert r.status_code == 503 and r.json()["error"] == "database_unavailable"
    page = service.get("alice", "/")
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    assert "try again" in page.text.lower() and page.headers["Retry-After"]


def test_a_database_bug_is_still_a_500_and_a_students_mistake_still_a_4xx(service, tiny_tar, monkeypatch):
    r = service.submit("alice", "open", b"not an archive")
    assert r.status_code == 422
    r = service.submit("alice", "closed", tiny_tar)
    assert r.status_code == 403
    bug = sa_exc.OperationalError("SELECT x", {}, sqlite3.OperationalError("no such column: x"))
    monkeypatch.setattr(queue, "enqueue", raiser(bug))
    client = TestClient(service.app, raise_server_exceptions=False)
    r = client.post("/api/v1/assessments/open/submissions", headers=service.auth("alice"),
                    files={"handin": ("handin.tar", tiny_tar)})
    assert r.status_code == 500
