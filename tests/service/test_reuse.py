"""Identical resubmissions (same bytes, same student, same assessment, same grader version) show
the stored raw result again instead of being graded again, and say so; the score policy is still
worked out per submission."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from app.course import submissions
from app.grading import queue
from app.store.models import GradingCode, Job, Result, User
from grader.execute import UnsafeExecutor
from grader.version import reuse_key

from .conftest import make_tar, reference_files


def _jobs(service) -> int:
    with service.db.read_session() as s:
        return s.scalar(select(func.count()).select_from(Job).where(Job.kind != "reuse"))


def test_identical_resubmission_shows_the_stored_result_without_grading_again(service, partial_tar):
    first = service.submit("alice", "open", partial_tar).json()
    assert service.drain() == 1
    again = service.submit("alice", "open", partial_tar)
    assert again.status_code == 202 and again.json()["status"] == "graded"   # at once, no queue
    assert service.drain() == 0 and _jobs(service) == 1
    view = service.get("alice", again.json()["url"]).json()
    original = service.get("alice", first["url"]).json()
    assert view["score"] == original["score"] == 90 and view["sections"] == original["sections"]
    assert view["reused_from"] == {"id": first["id"], "version": 1, "url": first["url"]}
    assert original["reused_from"] is None
    page = service.client.get(f"/submissions/{again.json()['id']}", headers=service.auth("alice"))
    assert page.status_code == 200 and "its result is shown again without grading it again" in page.text


def test_reuse_keeps_the_policy_per_submission(service, good_tar):
    service.submit("alice", "late", good_tar)
    service.drain()
    again = service.submit("alice", "late", good_tar).json()
    view = service.get("alice", again["url"]).json()
    assert view["reused_from"] and view["score"] == 100
    assert view["policy"]["late_days"] == 2 and view["policy"]["late_penalty"] == 20


def test_another_students_identical_bytes_are_graded_not_reused(service, partial_tar):
    service.submit("alice", "open", partial_tar)
    service.drain()
    r = service.submit("bob", "open", partial_tar).json()
    assert r["status"] == "queued" and service.drain() == 1
    assert service.get("bob", r["url"]).json()["reused_from"] is None


def test_changed_bytes_a_changed_grader_or_other_isolation_grade_again(service, partial_tar):
    service.submit("alice", "open", partial_tar)
    service.drain()
    with service.db.read_session() as s:
        alice = s.scalar(select(User).where(User.username == "alice"))
    a = service.app.state.assessments["open"]
    now = datetime.now(UTC)
    queue.announce_grading_code(service.db, "test-worker", "another grader version")
    other_version = submissions.create_submission(service.db, a, alice, partial_tar, "h.tar", now, max_attempts=2, reuse=True)
    queue.announce_grading_code(service.db, "test-worker", reuse_key(unsafe=False))   # stored one is unsafe
    sandboxed = submissions.create_submission(service.db, a, alice, partial_tar, "h.tar", now, max_attempts=2, reuse=True)
    changed = service.submit("alice", "open", partial_tar + b"\0" * 512).json()
    assert other_version.status == sandboxed.status == changed["status"] == "queued"


def test_a_result_where_a_section_hit_a_limit_is_never_reused(service):
    files = reference_files()
    files["mytorch/nn/loss.py"] += b"\nMSELoss.backward = lambda self: next(x for x in iter(int, 1) if x)\n"
    looping = make_tar(files)
    service.submit("alice", "open", looping)
    assert service.drain(UnsafeExecutor(timeout=2.0)) == 1
    with service.db.read_session() as s:
        assert s.scalar(select(Result.reuse_key)) is None   # a time limit can depend on the load
    assert service.submit("alice", "open", looping).json()["status"] == "queued"


def test_workers_redeployed_with_new_grading_code_regrade_a_resubmission(service, partial_tar):
    """Attack (issue 18 item 10): only the workers were redeployed with changed grading code; the web
    tier's own copy of the grader is the old one. A resubmission must not show the old code's result:
    the key comes from the code the workers announced, not from the web process."""
    service.submit("alice", "open", partial_tar)
    assert service.drain() == 1
    queue.announce_grading_code(service.db, "redeployed-worker", "the new grading code")
    again = service.submit("alice", "open", partial_tar).json()
    assert again["status"] == "queued" and service.drain() == 1


def test_no_reuse_before_any_worker_said_what_code_it_runs(service, partial_tar):
    """With no announcement (the announcements lost, or no worker started since the schema came), nothing
    is reused: the web tier cannot know which code would grade it."""
    service.submit("alice", "open", partial_tar)
    assert service.drain() == 1
    with service.db.session() as s, s.begin():
        s.query(GradingCode).delete()
    assert service.submit("alice", "open", partial_tar).json()["status"] == "queued"


def test_a_reused_result_is_no_worker_on_the_queue_page_or_in_the_wait_estimate(service, partial_tar):
    """A reuse is graded by nobody: it once showed up as a worker named "reused" that the queue
    page listed and the wait estimate counted as one more worker sharing the queue."""
    from app.web.queries import queue_details

    service.submit("alice", "open", partial_tar)
    assert service.drain() == 1
    assert service.submit("alice", "open", partial_tar).json()["status"] == "graded"   # reused
    waiting = service.submit("bob", "open", partial_tar).json()
    with service.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Result).where(Result.reused_from.is_not(None))) == 1
        workers = [w["name"] for w in queue_details(s, service.settings.lease_seconds)["workers"]]
        place = queue.place(s, s.get(Job, s.scalar(select(Job.id).where(Job.submission_id == waiting["id"]))))
    assert workers == ["test-worker"]
    assert place.workers == 1
