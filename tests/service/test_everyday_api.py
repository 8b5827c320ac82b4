"""Issue 13 on the JSON API: a wrong or revoked token is told apart from no token at all."""

from __future__ import annotations


def test_a_wrong_or_revoked_token_gets_its_own_message(service):
    c = service.client
    none = c.get("/api/v1/me")
    assert none.status_code == 401 and none.json()["error"] == "unauthorized"
    assert "Bearer" in none.json()["message"]

    wrong = c.get("/api/v1/me", headers={"Authorization": "Bearer gr_mistyped"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_token"
    assert "not valid" in wrong.json()["message"] and wrong.json()["message"] != none.json()["message"]
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]

    made = service.post("alice", "/api/v1/tokens", json={"name": "laptop"}).json()
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert c.get("/api/v1/me", headers=bearer).status_code == 200
    assert c.delete(f"/api/v1/tokens/{made['id']}", headers=bearer).status_code == 200
    revoked = c.get("/api/v1/me", headers=bearer)
    assert revoked.status_code == 401 and revoked.json()["error"] == "invalid_token"
    assert "'laptop'" in revoked.json()["message"] and "was revoked on" in revoked.json()["message"]
    # The upload path (what create_tarball.sh prints) says the same.
    up = c.post("/api/v1/assessments/open/submissions", headers=bearer, files={"handin": ("h.tar", b"x")})
    assert up.status_code == 401 and "was revoked on" in up.json()["message"]


def test_ta_submission_lists_come_in_pages_that_keep_their_count(service, tiny_tar):
    from app.web import queries

    for _ in range(3):
        assert service.submit("alice", "open", tiny_tar).status_code == 202
    a = service.app.state.assessments["open"]
    with service.db.read_session() as s:
        first, total = queries.staff_submissions(s, a, per_page=2, page=1)
        second, again = queries.staff_submissions(s, a, per_page=2, page=2)
    assert total == again == 3 and len(first) == 2 and len(second) == 1
    assert {r["sub"].id for r in first}.isdisjoint(r["sub"].id for r in second)
    assert queries.pages(3, 2, per_page=2) == {"page": 2, "last": 2, "first_row": 3, "last_row": 3, "total": 3}
    assert queries.pages(0, 5)["page"] == 1
