"""/openapi.json documents a body for every success answer of every route."""

from __future__ import annotations


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
