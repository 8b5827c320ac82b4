"""Failures across the class grouped by cause (issue 20 item 14): an import failure by its file,
line and error (not by the "Not run" each of its tests carries), digits kept where they tell tests
or lines apart, a view per section besides the first failure, and every student of each group."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from app.auth import admin
from app.course import submissions
from app.grading import queue
from app.store.models import User
from grader.grade import NOT_IMPORTED
from grader.suites import get as get_suite

POINTS = get_suite("hw1p1").section_points


def passed(name: str) -> dict:
    return {"name": name, "score": POINTS[name], "max_score": POINTS[name], "passed": True, "message": None,
            "tests": [{"name": "handout case", "passed": True, "message": ""}]}


def not_imported(name: str, path: str, line: int, error: str) -> dict:
    """A section stopped by an import error, as grader.grade.score_section records it."""
    message = f"{path} has a syntax error on line {line}: {error}.\n    def forward(self, A)\n                        ^"
    return {"name": name, "score": 0, "max_score": POINTS[name], "passed": False, "message": message,
            "tests": [{"name": t, "passed": False, "message": NOT_IMPORTED}
                      for t in ("handout case: Linear(2, 3)", "random case: N=1, Linear(3, 2)")]}


def wrong_values(name: str, test: str, label: str) -> dict:
    return {"name": name, "score": 0, "max_score": POINTS[name], "passed": False, "message": None,
            "tests": [{"name": "handout case: Linear(2, 3)", "passed": True, "message": ""},
                      {"name": test, "passed": False, "message": f"{label}: values differ at 1.25",
                       "checks": [{"label": label, "passed": False, "message": "off", "expected_shape": [1, 2],
                                   "got_shape": [1, 2], "worst_index": [0, 1]}]}]}


def body(*failing: dict) -> dict:
    by_name = {s["name"]: s for s in failing}
    sections = [by_name.get(name) or passed(name) for name in POINTS]
    score = sum(s["score"] for s in sections)
    return {"assessment": "hw1p1", "score": score, "max_score": 100, "error": None, "sandbox": "bwrap",
            "unsafe": False, "notes": [], "timings": {}, "sections": sections}


def graded(service, username: str, result: dict) -> int:
    admin.add_user(service.db, username, "student", None, username.title())
    with service.db.read_session() as s:
        user = s.query(User).filter_by(username=username).one()
    sub = submissions.create_submission(service.db, service.app.state.assessments["open"], user,
                                        username.encode(), "h.tar", datetime.now(UTC) - timedelta(minutes=5), max_attempts=service.settings.max_attempts)
    claim = queue.claim(service.db, "test", 60)
    assert queue.record_result(service.db, claim, "test", score=result["score"], max_score=100,
                               body=json.dumps(result), handin_error=None)
    return sub.id


def groups_on(page: str) -> list[tuple[int, str, list[str]]]:
    """(students, the cause shown, the usernames listed) per group of the failures page."""
    out = []
    for card in re.findall(r'<li class="card" id="group-\d+">(.*?)</li>\s*(?=<li class="card"|</ol>)', page, re.DOTALL):
        count = int(re.search(r'<span class="count">(\d+) student', card).group(1))
        what = re.search(r'<pre class="message">(.*?)</pre>', card, re.DOTALL).group(1)
        names = re.findall(r'<span class="muted small">\(([^)]+)\)</span>', card)
        out.append((count, what, names))
    return out


def test_import_failures_are_grouped_by_their_file_line_and_error_not_by_not_run(service):
    graded(service, "ann", body(not_imported("Linear Layer", "mytorch/nn/linear.py", 12, "expected ':'")))
    graded(service, "ben", body(not_imported("Linear Layer", "mytorch/nn/linear.py", 40, "invalid syntax")))
    graded(service, "cat", body(not_imported("Linear Layer", "mytorch/nn/linear.py", 12, "expected ':'")))
    page = service.get("tina", "/ta/assessments/open/failures").text
    found = groups_on(page)
    assert [(n, names) for n, _, names in found] == [(2, ["ann", "cat"]), (1, ["ben"])]
    assert "mytorch/nn/linear.py has a syntax error on line 12: expected &#39;:&#39;." in found[0][1]
    assert "line 40: invalid syntax" in found[1][1]
    assert "Not run" not in page


def test_digits_that_tell_tests_apart_are_kept(service):
    """N=1 and N=7 are different random cases (a batch of one is a classic failure): two groups;
    a decimal value in a free-text message does not split a group."""
    label = "Z = Linear.forward(A)"
    graded(service, "dan", body(wrong_values("Linear Layer", "random case: N=1, Linear(3, 2)", label)))
    graded(service, "eve", body(wrong_values("Linear Layer", "random case: N=7, Linear(5, 4)", label)))
    graded(service, "fay", body(wrong_values("Linear Layer", "random case: N=1, Linear(3, 2)", label)))
    page = service.get("tina", "/ta/assessments/open/failures").text
    assert [(n, names) for n, _, names in groups_on(page)] == [(2, ["dan", "fay"]), (1, ["eve"])]
    assert "random case: N=1, Linear(3, 2)" in page and "random case: N=7, Linear(5, 4)" in page


def test_a_view_per_section_groups_everyone_failing_that_section(service):
    """Gus fails Linear first and SGD too: the first-failure view shows him under Linear only; the
    SGD view shows him beside Hal, whose first failure is SGD."""
    sgd = wrong_values("SGD", "handout case: plain SGD, two steps", "layers[0].W after step 1")
    graded(service, "gus", body(not_imported("Linear Layer", "mytorch/nn/linear.py", 3, "expected ':'"), sgd))
    graded(service, "hal", body(sgd))
    first = service.get("tina", "/ta/assessments/open/failures").text
    assert sorted((n, tuple(names)) for n, _, names in groups_on(first)) == [(1, ("gus",)), (1, ("hal",))]
    assert re.search(r'failures\?section=SGD">SGD \(2\)</a>', first)
    assert re.search(r'failures\?section=Linear%20Layer">Linear Layer \(1\)</a>', first)
    by_sgd = service.get("tina", "/ta/assessments/open/failures?section=SGD").text
    assert [(n, names) for n, _, names in groups_on(by_sgd)] == [(2, ["gus", "hal"])]
    assert "layers[0].W after step 1: values differ" in by_sgd
    assert '<strong aria-current="page">SGD (2)</strong>' in by_sgd


def test_every_student_of_a_group_is_listed(service):
    """Twelve students with one cause: all twelve are named and linked, not five and "7 more"."""
    ids = {}
    for i in range(12):
        ids[f"s{i:02d}"] = graded(service, f"s{i:02d}", body(wrong_values("Loss", "handout case: MSELoss", "L")))
    page = service.get("tina", "/ta/assessments/open/failures").text
    [(count, _, names)] = groups_on(page)
    assert count == 12 and names == sorted(ids)
    for sub_id in ids.values():
        assert f'href="/submissions/{sub_id}"' in page
    assert "more" not in page.split("failure-groups")[1]


def test_a_student_cannot_open_the_failures_page(service):
    r = service.get("alice", "/ta/assessments/open/failures?section=SGD")
    assert r.status_code == 403


def stopped_by_time(name: str, test: str, path: str, line: int) -> dict:
    """A section its time limit stopped, as grader.grade records it: the test that was running
    (with the student's stack and line), the tests never reached."""
    limit = "The section took longer than its 30.0 s time limit."
    return {"name": name, "score": 0, "max_score": POINTS[name], "passed": False, "message": limit,
            "tests": [{"name": test, "passed": False, "stopped": "time_limit",
                       "message": f"{limit} This test was running then. It was running {path}, line {line}.",
                       "error": f'Where your code was when the time ran out (your code only):\n  File "{path}", '
                                f"line {line}, in forward", "location": {"path": path, "line": line}},
                      {"name": "random case: 9x5 training batch, alpha=0.8", "passed": False,
                       "stopped": "not_reached", "message": f'Not reached: the section\'s time ran out during the test "{test}".'}]}


def test_a_time_limit_is_grouped_by_the_line_that_was_running_not_as_an_exception(service):
    test = "random case: 4x3 training batch"
    graded(service, "ida", body(stopped_by_time("Batch Norm", test, "mytorch/nn/batchnorm.py", 20)))
    graded(service, "joe", body(stopped_by_time("Batch Norm", test, "mytorch/nn/batchnorm.py", 20)))
    graded(service, "kai", body(stopped_by_time("Batch Norm", test, "mytorch/nn/batchnorm.py", 31)))
    found = groups_on(service.get("tina", "/ta/assessments/open/failures").text)
    assert [(n, what, names) for n, what, names in found] == [
        (2, "stopped by the time limit in mytorch/nn/batchnorm.py, line 20", ["ida", "joe"]),
        (1, "stopped by the time limit in mytorch/nn/batchnorm.py, line 31", ["kai"])]
