"""What counts (issue 20 item 8): an HW1P1 upload missing a graded file entirely is refused at
upload, listing the missing files, and never replaces the score that counts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from support import make_tar, reference_files

from app.store.models import Submission, User


def _without(prefix: str) -> bytes:
    return make_tar({p: data for p, data in reference_files().items() if not p.startswith(prefix)})


@pytest.mark.parametrize("door", ["api", "form"])
def test_a_tar_without_models_is_refused_listing_the_missing_files_and_the_counted_score_stays(
        service, browser_session, good_tar, door):
    assert service.submit("bob", "open", good_tar).status_code == 202
    service.drain()
    before = service.get("tina", "/api/v1/assessments/open/scoreboard").json()
    assert before[0]["username"] == "bob" and before[0]["score"] == 105

    if door == "api":
        r = service.submit("bob", "open", _without("models/"))
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "missing_files"
        message = r.json()["message"]
    else:
        client, csrf = browser_session
        r = client.post("/assessments/open/submit", data={"csrf_token": csrf},
                        files={"handin": ("handin.tar", _without("models/"))}, follow_redirects=False)
        assert r.status_code == 303, r.text   # post, redirect, get: the page says why once
        page = client.get(r.headers["location"])
        assert page.status_code == 200 and 'id="server-error"' in page.text
        message = page.text
    assert "models/mlp.py" in message and "mytorch/nn/linear.py" not in message

    with service.db.read_session() as s:   # nothing stored, nothing queued
        assert s.scalar(select(func.count()).select_from(Submission)) == 1
    assert service.get("tina", "/api/v1/assessments/open/scoreboard").json() == before


def test_every_missing_graded_file_is_listed_once(service):
    files = {p: d for p, d in reference_files().items()
             if p not in ("mytorch/nn/batchnorm.py", "mytorch/optim/sgd.py")}
    r = service.submit("bob", "open", make_tar(files))
    assert r.status_code == 422
    message = r.json()["message"]
    assert "2 graded file(s): mytorch/nn/batchnorm.py, mytorch/optim/sgd.py." in message, message


# ---------------------------------------------------------------------------------------------
# counts = "chosen": the student marks the submission that counts (Gradescope's active submission)

@pytest.fixture
def assessments_dir(assessments_dir):
    """The usual test assessments plus one where the student chooses what counts."""
    from .conftest import _iso, write_assessment

    write_assessment(assessments_dir, "chosen", _iso(-1), _iso(5), _iso(7), counts="chosen")
    return assessments_dir


def _graded(service, name: str, slug: str, data: bytes) -> int:
    r = service.submit(name, slug, data)
    assert r.status_code == 202, r.text
    service.drain()
    return r.json()["id"]


def _board(service, slug: str) -> dict[str, dict]:
    return {r["username"]: r for r in service.get("tina", f"/api/v1/assessments/{slug}/scoreboard").json()}


def test_the_student_chooses_what_counts_and_every_list_follows(service, good_tar, partial_tar, tiny_tar):
    import csv
    import io

    from app.course import standings

    good = _graded(service, "alice", "chosen", good_tar)
    partial = _graded(service, "alice", "chosen", partial_tar)
    assert _board(service, "chosen")["alice"]["score"] == 90          # without a choice: the latest

    r = service.post("alice", f"/api/v1/submissions/{good}/count")
    assert r.status_code == 200, r.text
    assert r.json()["policy"]["counts"] is True and r.json()["policy"]["assessment_total"] == 100
    assert _board(service, "chosen")["alice"]["score"] == 100
    rows = {x["username"]: x for x in csv.DictReader(io.StringIO(
        service.get("tina", "/api/v1/assessments/chosen/gradebook.csv").text))}
    assert rows["alice"]["total"] == "100" and rows["alice"]["counted_version"] == "1"
    a = service.app.state.assessments["chosen"]
    with service.db.read_session() as s:
        alice = s.scalar(select(User.id).where(User.username == "alice"))
        assert standings.counted_submissions(s, a)[alice] == good    # failures and similarity read this
    mine = {x["id"]: x for x in service.get("alice", "/api/v1/assessments/chosen/submissions").json()}
    assert mine[good]["policy"]["counts"] and not mine[partial]["policy"]["counts"]
    page = service.get("tina", "/ta/submissions?assessment=chosen").text
    assert page.count('class="badge counts"') == 1

    # a new upload counts again until the student chooses
    newer = _graded(service, "alice", "chosen", tiny_tar)
    assert _board(service, "chosen")["alice"]["score"] == 0
    with service.db.read_session() as s:
        assert standings.counted_submissions(s, a)[alice] == newer


def test_only_your_own_graded_submission_on_a_chosen_assessment_while_it_is_open(service, good_tar):
    alices = _graded(service, "alice", "chosen", good_tar)
    r = service.post("bob", f"/api/v1/submissions/{alices}/count")
    assert r.status_code == 404                                     # another student's: no such thing
    r = service.post("tina", f"/api/v1/submissions/{alices}/count")
    assert r.status_code == 403                                     # staff choose for nobody
    latest = _graded(service, "alice", "open", good_tar)
    r = service.post("alice", f"/api/v1/submissions/{latest}/count")
    assert r.status_code == 409 and r.json()["error"] == "not_chosen"
    assert "latest graded submission counts" in r.json()["message"]


def test_choosing_what_counts_is_one_query_in_the_class_lists(service, good_tar, partial_tar):
    """counted_submissions (standings, gradebook, failures, similarity, TA lists) stays one query
    with choices made."""
    from app.course import standings

    from .test_query_counts import statements

    good = _graded(service, "alice", "chosen", good_tar)
    _graded(service, "alice", "chosen", partial_tar)
    _graded(service, "bob", "chosen", partial_tar)
    assert service.post("alice", f"/api/v1/submissions/{good}/count").status_code == 200
    a = service.app.state.assessments["chosen"]
    with service.db.read_session() as s, statements(service.db.engine) as seen:
        counted = standings.counted_submissions(s, a)
    queries = [x for x in seen if x.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1, queries
    assert counted[next(iter(counted))] is not None and good in counted.values()


def test_a_choice_holds_until_the_next_upload_and_only_where_the_rules_say_chosen():
    from datetime import UTC, datetime, timedelta

    from app.course import policy

    t = datetime(2026, 2, 1, 12, tzinfo=UTC)
    rules = policy.Rules(release=t - timedelta(days=9), early=None, due=t + timedelta(days=1),
                         last_accepted=t + timedelta(days=2), max_score=100, counts="chosen")
    d = policy.deadlines_for(rules)
    first = policy.Attempt(t, 100, graded=True, ident=1)
    second = policy.Attempt(t + timedelta(minutes=5), 40, graded=True, ident=2)
    assert policy.counted([first, second], d, rules) == second                      # no choice: the latest
    choice = policy.Choice(1, t + timedelta(minutes=6))
    assert policy.counted([first, second], d, rules, choice) == first
    third = policy.Attempt(t + timedelta(minutes=6, microseconds=1), None, graded=False, ident=3)
    assert policy.counted([first, second, third], d, rules, choice) == second       # uploaded since: latest graded
    errored = policy.Attempt(t + timedelta(minutes=7), None, graded=True, grader_error=True, ident=4)
    assert policy.counted([first, second, errored], d, rules, choice) == first      # a grader error is no upload
    latest = policy.Rules(**{**rules.__dict__, "counts": "latest"})
    assert policy.counted([first, second], d, latest, choice) == second             # "latest" ignores choices
