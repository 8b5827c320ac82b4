"""/openapi.json documents a body for every success answer of every route: a JSON body by a named
model (a route's response_model), never a bare object."""

from __future__ import annotations


def _named(schema: dict) -> bool:
    """A named model ($ref), or a list of them, or one of several."""
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _named(schema.get("items", {}))
    options = schema.get("anyOf") or schema.get("oneOf")
    return bool(options) and all(_named(o) for o in options)


def test_every_2xx_response_has_a_schema(service):
    spec = service.client.get("/openapi.json").json()
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            successes = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            assert successes, f"{method.upper()} {path} documents no success"
            for code, response in successes.items():
                content = response.get("content") or {}
                if not content or any(not media.get("schema") for media in content.values()):
                    missing.append(f"{method.upper()} {path} {code}")
    assert not missing, f"no schema for: {missing}"


def test_the_handin_download_is_documented_as_bytes(service):
    spec = service.client.get("/openapi.json").json()
    content = spec["paths"]["/api/v1/submissions/{submission_id}/handin"]["get"]["responses"]["200"]["content"]
    assert content == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def test_every_json_success_body_is_a_named_model(service):
    """A route returning a bare dict documents `{"type": "object"}`: nothing a client can rely on."""
    spec = service.client.get("/openapi.json").json()
    bare = [f"{method.upper()} {path} {code}"
            for path, operations in spec["paths"].items() for method, op in operations.items()
            for code, response in op["responses"].items() if code.startswith("2")
            for media, content in (response.get("content") or {}).items()
            if media == "application/json" and not _named(content.get("schema", {}))]
    assert not bare, f"JSON bodies without a response_model: {bare}"


def test_the_scan_sees_named_and_bare_bodies():
    assert _named({"$ref": "#/components/schemas/SubmissionPublic"})
    assert _named({"type": "array", "items": {"anyOf": [{"$ref": "#/a"}, {"$ref": "#/b"}]}})
    assert not _named({"type": "object", "additionalProperties": True})
    assert not _named({"type": "array", "items": {"type": "object"}})


def test_answers_match_their_documented_models(service, tiny_tar):
    """The bodies the API really sends validate against the models /docs shows (and keep the
    fields the served script and the tests read)."""
    from app.api.models import QueueHealth, Submitted, TokenPublic
    from app.course.views import (
        AssessmentPublic,
        ScoreboardRow,
        StaffScoreboardRow,
        SubmissionForStaff,
        SubmissionPublic,
    )

    posted = service.submit("alice", "open", tiny_tar)
    sent = Submitted.model_validate(posted.json())
    assert posted.status_code == 202 and sent.page_url.endswith(f"/submissions/{sent.id}")
    service.drain()
    mine = service.get("alice", f"/api/v1/submissions/{sent.id}").json()
    assert "user" not in mine and SubmissionPublic.model_validate(mine).status == "graded"
    theirs = service.get("tina", f"/api/v1/submissions/{sent.id}").json()
    assert SubmissionForStaff.model_validate(theirs).user.username == "alice"
    board = service.get("bob", "/api/v1/assessments/open/scoreboard").json()
    assert "username" not in board[0] and ScoreboardRow.model_validate(board[0]).submissions == 1
    assert StaffScoreboardRow.model_validate(
        service.get("tina", "/api/v1/assessments/open/scoreboard").json()[0]).username == "alice"
    for row in service.get("alice", "/api/v1/assessments").json():
        AssessmentPublic.model_validate(row)
    QueueHealth.model_validate(service.get("tina", "/api/v1/queue").json())
    [TokenPublic.model_validate(t) for t in service.get("alice", "/api/v1/tokens").json()]
