"""Stored results are read back through the result model (grader.result.GradeResult), not as loose
JSON: rows stored before a field existed gain its default, and the model's JSON rules (NaN and
infinities as strings) hold on the way out of the API."""

from __future__ import annotations

import json

from app.course.submissions import stored_result
from app.grading import queue

OLD_ROW = {   # a result as stored before tests carried typed checks and notes
    "assessment": "hw1p1", "score": 0, "max_score": 15, "error": None, "sandbox": "bwrap", "unsafe": False,
    "notes": [], "timings": {},
    "sections": [{"name": "Linear Layer", "score": 0, "max_score": 15, "passed": False, "message": None,
                  "tests": [{"name": "handout case", "passed": False,
                             "message": "Z = Linear.forward(A): values differ."}]}],
}


def store(service, tiny_tar, body: dict) -> int:
    sub_id = service.submit("alice", "open", tiny_tar).json()["id"]
    claim = queue.claim(service.db, "test", 60)
    assert claim is not None and claim.submission_id == sub_id
    assert queue.record_result(service.db, claim, "test", score=body["score"], max_score=body["max_score"],
                               body=json.dumps(body), handin_error=None)
    return sub_id


def test_an_older_row_gains_the_new_fields_defaults(service, tiny_tar):
    sub_id = store(service, tiny_tar, OLD_ROW)
    view = service.get("alice", f"/api/v1/submissions/{sub_id}").json()
    test = view["sections"][0]["tests"][0]
    assert test["checks"] == [] and test["notes"] == [] and test["error"] is None
    assert test["message"] == "Z = Linear.forward(A): values differ."
    page = service.get("alice", f"/submissions/{sub_id}")
    assert page.status_code == 200 and "Z = Linear.forward(A): values differ." in page.text


def test_non_finite_excerpts_stay_strings_in_the_api(service, tiny_tar):
    body = json.loads(json.dumps(OLD_ROW))
    body["sections"][0]["tests"][0]["checks"] = [{
        "label": "Z = Linear.forward(A)", "passed": False, "message": "Z = Linear.forward(A) contains nan.",
        "expected": [1.0, 2.0], "got": ["NaN", "Infinity"], "expected_shape": [2], "got_shape": [2],
        "worst_index": [0], "off_indices": [[0], [1]]}]
    sub_id = store(service, tiny_tar, body)
    r = service.get("alice", f"/api/v1/submissions/{sub_id}")
    assert r.status_code == 200, r.text
    check = r.json()["sections"][0]["tests"][0]["checks"][0]
    assert check["got"] == ["NaN", "Infinity"] and check["worst_index"] == [0]
    page = service.get("alice", f"/submissions/{sub_id}")
    assert page.status_code == 200 and 'class="off worst"' in page.text


def test_failures_across_the_class_group_by_typed_fields_not_sentences():
    from app.course.failures import first_failure
    from grader.result import GradeResult

    def result(check: dict) -> GradeResult:
        body = json.loads(json.dumps(OLD_ROW))
        body["sections"][0]["tests"][0]["checks"] = [{"label": "Z = Linear.forward(A)", "passed": False,
                                                      "message": "any sentence at all", **check}]
        return GradeResult.model_validate(body)

    values = result({"expected_shape": [2], "got_shape": [2], "worst_index": [1]})
    shape = result({"expected_shape": [2, 1], "got_shape": [2]})
    missing = result({"expected_shape": [2], "got_shape": None})
    assert first_failure(values) == ("Linear Layer", "handout case", "Z = Linear.forward(A): values differ")
    assert first_failure(shape)[2] == "Z = Linear.forward(A): wrong shape"
    assert first_failure(missing)[2] == "Z = Linear.forward(A): no usable value"


def test_crash_printing_a_copy_of_a_real_failure_line_is_not_grouped_under_it():
    """Attack (issue 18 item 11): a handin raises an exception whose message ends with a copy of a real
    failure line; grouping by the error's last line put that crash under the real failure. Crashes are
    grouped by where they raised (typed), never by what they printed."""
    from app.course.failures import first_failure
    from grader.result import GradeResult

    real = json.loads(json.dumps(OLD_ROW))
    real["sections"][0]["tests"][0]["checks"] = [{"label": "Z = Linear.forward(A)", "passed": False,
                                                  "expected_shape": [2], "got_shape": [2], "worst_index": [1]}]
    forged = json.loads(json.dumps(OLD_ROW))
    forged["sections"][0]["tests"][0].update(
        checks=[], error="Exception: boom\nZ = Linear.forward(A): values differ",
        location={"path": "mytorch/nn/linear.py", "line": 7})
    real_group = first_failure(GradeResult.model_validate(real))
    forged_group = first_failure(GradeResult.model_validate(forged))
    assert forged_group != real_group
    assert forged_group[2] == "raised an exception in mytorch/nn/linear.py, line 7"
    assert "values differ" not in forged_group[2]


def test_the_view_dump_equals_the_json_dump_so_no_float_escapes_as_nan():
    """Views take `model_dump(mode="json")` instead of a JSON round trip: that holds only while every
    float under `sections` is a JsonFloat (a bare float would dump NaN as nan, not "NaN")."""
    body = json.loads(json.dumps(OLD_ROW))
    body["sections"][0]["tests"][0]["checks"] = [{
        "label": "Z", "passed": False, "message": "", "expected": [[1.0, "-Infinity"]], "got": ["NaN", "Infinity"],
        "expected_shape": [1, 2], "got_shape": [2], "worst_index": [0], "off_indices": [[0]]}]
    result = stored_result(json.dumps(body))
    shown = result.model_dump(mode="json", include={"sections", "notes"})
    assert shown == json.loads(result.model_dump_json(include={"sections", "notes"}))
    assert shown["sections"][0]["tests"][0]["checks"][0]["got"] == ["NaN", "Infinity"]
