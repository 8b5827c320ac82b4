"""Post, then redirect, then get on the forms (issue 20 item 9): each POST answers 303 to a page,
the page shows the form's result once, a reload of it is a plain GET (no resend prompt, no
activation links or API tokens shown twice), and a POST-only address opened again is its page,
not a 405. Forms covered: roster import, extension, regrades, role change, activation and reset
links, nickname, API token, upload refusals, the activation page's own form."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient


def _login(service, name: str) -> tuple[TestClient, str]:
    client = TestClient(service.app, follow_redirects=False)
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"username": name, "password": f"{name}-password", "next": "/",
                                    "csrf_token": token})
    assert r.status_code == 303, r.text
    return client, client.get("/api/v1/me").json()["csrf_token"]


@pytest.fixture
def tina(service):
    client, csrf = _login(service, "tina")
    yield client, csrf
    client.close()


def test_roster_import_redirects_and_shows_the_links_once(tina):
    client, csrf = tina
    roster = b"username,name,email\nsam,Sam S,sam@example.edu\n"
    r = client.post("/ta/students/import", data={"csrf_token": csrf}, files={"roster": ("r.csv", roster)})
    assert r.status_code == 303 and r.headers["location"].startswith("/ta/students?"), r.text[:300]
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "Imported 1 new student(s)." in page.text
    assert page.text.count("/activate?token=") == 1
    again = client.get(r.headers["location"])   # the reload: the page, without the secrets
    assert again.status_code == 200 and "/activate?token=" not in again.text
    assert "Imported 1 new student(s)." not in again.text


def test_a_refused_roster_redirects_with_its_reason(tina):
    client, csrf = tina
    r = client.post("/ta/students/import", data={"csrf_token": csrf},
                    files={"roster": ("r.csv", b"username,name\n@SUM(1+1),Evil\n")})
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "could not be read as a CSV roster" in page.text and "line 2" in page.text


def test_extension_redirects_and_shows_its_notice(tina, service):
    client, csrf = tina
    r = client.post("/ta/students/alice/extension",
                    data={"csrf_token": csrf, "assessment": "open", "days": "2", "hours": "0"})
    assert r.status_code == 303 and "assessment=open" in r.headers["location"]
    page = client.get(r.headers["location"])
    assert "alice now has an extension of 2 day(s) 0 hour(s) on open." in page.text
    listed = {a["slug"]: a for a in service.get("alice", "/api/v1/assessments").json()}
    assert listed["open"]["extension_seconds"] == 2 * 86400


def test_another_users_result_key_shows_nothing(tina, service):
    client, csrf = tina
    r = client.post("/ta/students/import", data={"csrf_token": csrf},
                    files={"roster": ("r.csv", b"username,name\nkim,Kim K\n")})
    location = r.headers["location"]
    from app.auth import admin
    admin.add_user(service.db, "ted", "ta", "ted-password")
    other, _ = _login(service, "ted")
    page = other.get(location)   # a leaked URL: the links stay with the TA who imported them
    assert page.status_code == 200 and "/activate?token=" not in page.text
    other.close()


@pytest.mark.parametrize("address, page", [
    ("/assessments/open/submit", "/assessments/open"),
    ("/ta/students/import", "/ta/students"),
    ("/ta/students/alice/extension", "/ta/students"),
    ("/ta/submissions/7/regrade", "/submissions/7"),
    ("/ta/assessments/open/regrade", "/ta/submissions?assessment=open"),
    ("/ta/students/alice/role", "/ta/students"),
    ("/ta/students/alice/activation", "/ta/students"),
    ("/ta/students/alice/password-reset", "/ta/students"),
    ("/ta/students/activation-links.csv", "/ta/students"),
    ("/profile/nickname", "/profile"),
    ("/profile/tokens", "/profile"),
    ("/profile/tokens/1/revoke", "/profile"),
    ("/ta/assessments/open/similarity/archive", "/ta/assessments/open/similarity"),
    ("/ta/assessments/open/similarity/archive/remove", "/ta/assessments/open/similarity"),
    ("/ta/similarity/3/pairs/0/review", "/ta/similarity/3/pairs/0"),
])
def test_a_post_only_address_opened_again_is_its_page_not_a_405(tina, address, page):
    client, _ = tina
    r = client.get(address)
    assert r.status_code == 303 and r.headers["location"] == page


def _shown_once(client, response, text: str) -> str:
    """RESPONSE is a 303 whose page shows TEXT once; returns that page's HTML."""
    assert response.status_code == 303, response.text[:300]
    page = client.get(response.headers["location"])
    assert page.status_code == 200 and text in page.text, page.text[:2000]
    again = client.get(response.headers["location"])   # the reload
    assert again.status_code == 200 and text not in again.text
    return page.text


def test_role_change_redirects_and_says_so_once(service):
    from app.auth import admin
    admin.add_user(service.db, "ada", "admin", "ada-password")
    ada, csrf = _login(service, "ada")
    r = ada.post("/ta/students/alice/role", data={"csrf_token": csrf, "role": "ta"})
    assert r.headers["location"].startswith("/ta/students?")
    _shown_once(ada, r, "alice is now ta.")
    r = ada.post("/ta/students/ada/role", data={"csrf_token": csrf, "role": "student"})   # refused
    _shown_once(ada, r, "You cannot change your own role.")
    ada.close()


def test_an_activation_link_redirects_and_is_shown_once(service, tina):
    from app.auth import admin
    admin.add_user(service.db, "sam", "student", None)
    client, csrf = tina
    r = client.post("/ta/students/sam/activation", data={"csrf_token": csrf})
    assert "token=" not in r.headers["location"]   # the secret never rides the URL
    _shown_once(client, r, "/activate?token=")
    r = client.post("/ta/students/alice/activation", data={"csrf_token": csrf})   # already active
    _shown_once(client, r, "alice has already activated their account")


def test_nickname_redirects_and_says_so_once(service):
    bob, csrf = _login(service, "bob")
    r = bob.post("/profile/nickname", data={"csrf_token": csrf, "nickname": "bobby-tables"})
    assert r.headers["location"].startswith("/profile?")
    page = _shown_once(bob, r, "Nickname saved.")
    assert 'value="bobby-tables"' in page
    r = bob.post("/profile/nickname", data={"csrf_token": csrf, "nickname": "no spaces!"})
    _shown_once(bob, r, "A nickname is 3 to 32 letters")
    bob.close()


def test_a_new_api_token_redirects_and_is_shown_once(service):
    bob, csrf = _login(service, "bob")
    r = bob.post("/profile/tokens", data={"csrf_token": csrf, "name": "laptop"})
    assert "gr_" not in r.headers["location"]   # the token waits server-side, never in the URL
    page = _shown_once(bob, r, 'id="new-token"')
    token = re.search(r'id="new-token"[^>]*value="(gr_[\w-]+)"', page).group(1)
    assert service.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    bob.close()


def test_an_upload_refusal_redirects_to_the_assessment_with_its_reason(service, tina):
    bob, csrf = _login(service, "bob")
    r = bob.post("/assessments/closed/submit", data={"csrf_token": csrf},
                 files={"handin": ("handin.tar", b"tiny")})
    assert r.headers["location"].startswith("/assessments/closed?shown=")
    _shown_once(bob, r, 'id="server-error"')
    bob.close()


def test_a_refused_similarity_archive_redirects_with_its_reason(tina):
    client, csrf = tina
    r = client.post("/ta/assessments/open/similarity/archive", data={"csrf_token": csrf, "source": "F24"},
                    files={"archive": ("f24.tar", b"not an archive at all")})
    assert r.headers["location"].startswith("/ta/assessments/open/similarity?shown=")
    _shown_once(client, r, "That archive could not be read")
