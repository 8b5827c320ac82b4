"""The course rules (grader/policy.py) at every boundary: one second before, at, and after each
deadline of the real S26 assessment file, in EST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.course import policy
from app.course.assessments import demo_copy, load_file
from app.course.policy import Attempt

from .conftest import REPO

EST = ZoneInfo("America/New_York")
A = load_file(REPO / "assessments" / "hw1p1.toml")
RULES = A.rules()
D = policy.deadlines_for(RULES)
SEC = timedelta(seconds=1)


def est(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=EST)


def test_s26_dates_are_eastern_standard_time():
    assert A.early == est("2026-01-23T23:59:00")
    assert A.due.astimezone(UTC) == datetime(2026, 2, 7, 4, 59, tzinfo=UTC)  # EST = UTC-5
    assert A.early.utcoffset() == timedelta(hours=-5)
    assert A.early_bonus == 5 and A.max_score == 100 and A.counts == "latest"


def full(t: datetime, ident: int = 1) -> Attempt:
    return Attempt(received_at=t, score=100, graded=True, ident=ident)


@pytest.mark.parametrize("offset, bonus", [(-SEC, 5), (timedelta(0), 5), (SEC, 0)])
def test_early_bonus_boundary(offset, bonus):
    assert policy.early_bonus([full(A.early + offset)], D, RULES) == bonus


def test_early_bonus_is_inclusive_to_the_second():
    assert policy.early_bonus([full(A.early + timedelta(milliseconds=999))], D, RULES) == 5


def test_early_bonus_needs_full_marks_and_stays():
    almost = Attempt(received_at=A.early - SEC, score=99, graded=True, ident=1)
    assert policy.early_bonus([almost], D, RULES) == 0
    later_worse = Attempt(received_at=A.due - SEC, score=40, graded=True, ident=2)
    s = policy.standing([full(A.early - SEC), later_worse], D, RULES)
    assert (s.raw, s.early_bonus, s.total) == (40, 5, 45)   # latest counts, bonus stays


@pytest.mark.parametrize("offset, days", [(-SEC, 0), (timedelta(0), 0), (SEC, 1),
                                          (timedelta(days=1), 1), (timedelta(days=1) + SEC, 2)])
def test_late_days_boundary(offset, days):
    assert policy.late_days(A.due + offset, D) == days


@pytest.mark.parametrize("offset, penalty", [(-SEC, 0), (timedelta(0), 0), (SEC, 10),
                                             (timedelta(days=2, seconds=1), 30)])
def test_late_penalty(offset, penalty):
    assert policy.late_penalty(A.due + offset, D, RULES, 100) == penalty
    assert policy.late_penalty(A.due + offset, D, RULES, 5) == min(5, penalty)   # never below zero


@pytest.mark.parametrize("offset, allowed", [(-SEC, True), (timedelta(0), True), (SEC, False)])
def test_last_accepted_boundary(offset, allowed):
    decision = policy.may_submit(A.last_accepted + offset, D, RULES, [], EST)
    assert decision.allowed is allowed
    if not allowed:
        assert "closed" in decision.reason and "2026-02-13 23:59:00 EST" in decision.reason


@pytest.mark.parametrize("offset, allowed", [(-SEC, False), (timedelta(0), True), (SEC, True)])
def test_release_boundary(offset, allowed):
    assert policy.may_submit(A.release + offset, D, RULES, [], EST).allowed is allowed


def test_on_time_until_due_then_late_until_last_accepted():
    for t, late in [(A.due - SEC, 0), (A.due, 0), (A.due + SEC, 1), (A.last_accepted, 7)]:
        assert policy.may_submit(t, D, RULES, [], EST).allowed
        assert policy.late_days(t, D) == late


@pytest.mark.parametrize("offset", [-SEC, timedelta(0), SEC])
def test_extension_moves_due_and_last_but_not_early(offset):
    d = policy.deadlines_for(RULES, extension_seconds=2 * 86400)
    assert d.early == A.early
    assert policy.late_days(A.due + timedelta(days=2) + offset, d) == (1 if offset > timedelta(0) else 0)
    assert policy.may_submit(A.last_accepted + timedelta(days=2) + offset, d, RULES, [], EST).allowed \
        is (offset <= timedelta(0))


def test_max_submissions_and_grader_errors():
    rules = policy.Rules(**{**RULES.__dict__, "max_submissions": 2})
    t = A.release + timedelta(days=1)
    two = [full(t, 1), full(t + SEC, 2)]
    assert not policy.may_submit(t + timedelta(hours=1), D, rules, two, EST).allowed
    errored = [full(t, 1), Attempt(received_at=t + SEC, grader_error=True, ident=2)]
    assert policy.may_submit(t + timedelta(hours=1), D, rules, errored, EST).allowed


@pytest.mark.parametrize("offset, allowed", [(-SEC, False), (timedelta(0), True)])
def test_min_interval_boundary(offset, allowed):
    rules = policy.Rules(**{**RULES.__dict__, "min_interval_seconds": 60})
    t = A.release + timedelta(days=1)
    decision = policy.may_submit(t + timedelta(seconds=60) + offset, D, rules, [full(t)], EST)
    assert decision.allowed is allowed
    # a grader error never starts the clock
    errored = [Attempt(received_at=t, grader_error=True)]
    assert policy.may_submit(t + SEC, D, rules, errored, EST).allowed


def test_latest_and_best():
    t = A.release + timedelta(days=1)
    subs = [Attempt(t, 90, True, ident=1), Attempt(t + SEC, 60, True, ident=2),
            Attempt(t + 2 * SEC, None, False, ident=3)]          # still queued: not counted yet
    assert policy.counted(subs, D, RULES).ident == 2
    best = policy.Rules(**{**RULES.__dict__, "counts": "best"})
    assert policy.counted(subs, D, best).ident == 1
    tie = [Attempt(t, 90, True, ident=1), Attempt(t + SEC, 90, True, ident=2)]
    assert policy.counted(tie, D, best).ident == 2              # ties go to the latest
    # best is judged after the late penalty: 100 two days late (-20) loses to 85 on time
    late = [Attempt(A.due - SEC, 85, True, ident=1), Attempt(A.due + timedelta(days=1, seconds=1), 100, True, ident=2)]
    assert policy.counted(late, D, best).ident == 1


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        policy.late_days(datetime(2026, 2, 7), D)


def test_demo_copy_is_open_now():
    demo = demo_copy(A)
    now = datetime.now(UTC)
    assert demo.slug == "hw1p1-demo"
    assert policy.may_submit(now, policy.deadlines_for(demo.rules()), demo.rules(), [], EST).allowed
