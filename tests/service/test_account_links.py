"""Accounts (issue 20 item 10): an activation link names its account, logs the student in, and
says on GET when it is used, replaced, expired or not a link at all, with the way forward; a TA
issues a password reset link (one-time, expiring, stored hashed, recorded with who issued it) and
downloads the roster's activation links as CSV (staff only, accounts not yet activated only)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth import accounts
from app.store.models import AccountLink, User, utcnow
from app.store.states import LinkPurpose

from .test_post_redirect_get import _login


@pytest.fixture
def tina(service):
    client, csrf = _login(service, "tina")
    yield client, csrf
    client.close()


def _import(client, csrf: str, csv_text: str) -> list[str]:
    """Import a roster through the Students page; the one-time links it shows."""
    r = client.post("/ta/students/import", data={"csrf_token": csrf}, files={"roster": ("r.csv", csv_text.encode())})
    return re.findall(r"http://[^<\s]+/activate\?token=[\w-]+", client.get(r.headers["location"]).text)


def _path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def _form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _set_password(client, link: str, password: str, again: str | None = None):
    page = client.get(_path(link))
    assert page.status_code == 200, page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    return client.post(urlsplit(link).path, data={"token": token, "password": password,
                                                  "password2": password if again is None else again,
                                                  "csrf_token": _form_token(page.text)})


def test_activation_names_the_account_logs_in_and_a_used_link_says_log_in(service, tina):
    client, csrf = tina
    [link] = _import(client, csrf, "username,name\nsam,Sam Student\n")
    student = TestClient(service.app, follow_redirects=False)
    page = student.get(_path(link))
    assert page.status_code == 200 and "Account: <strong" in page.text and ">sam</strong> (Sam Student)" in page.text
    r = _set_password(student, link, "sams-new-password")
    assert r.status_code == 303 and r.headers["location"].startswith("/?shown=")
    home = student.get(r.headers["location"])   # logged in by the link, told so once
    assert home.status_code == 200 and "logged in as sam" in home.text
    assert student.get("/api/v1/me").json()["user"]["username"] == "sam"
    assert "logged in as sam" not in student.get(r.headers["location"]).text   # a reload: the plain page

    again = TestClient(service.app, follow_redirects=False).get(_path(link))   # the link, a second time
    assert again.status_code == 410
    assert "already used" in again.text and 'href="/login?username=sam"' in again.text
    assert 'name="password"' not in again.text
    login = TestClient(service.app).get("/login?username=sam")   # the link's way forward
    assert re.search(r'id="username"[^>]*value="sam"', login.text)


@pytest.mark.parametrize("token", ["not-a-token", "", "x" * 500])
def test_an_invalid_link_says_so_and_to_ask_the_ta(service, token):
    page = TestClient(service.app).get("/activate", params={"token": token})
    assert page.status_code == 404
    assert "not valid" in page.text and "Ask your TA" in page.text and 'name="password"' not in page.text


def test_a_replaced_link_says_to_use_the_newest(service, tina):
    client, csrf = tina
    [first] = _import(client, csrf, "username\nsam\n")
    r = client.post("/ta/students/sam/activation", data={"csrf_token": csrf})
    [second] = re.findall(r"http://[^<\s]+/activate\?token=[\w-]+", client.get(r.headers["location"]).text)
    anon = TestClient(service.app, follow_redirects=False)
    old = anon.get(_path(first))
    assert old.status_code == 410 and "newer link replaced this one" in old.text
    assert anon.get(_path(second)).status_code == 200


def test_a_mistyped_password_comes_back_as_a_redirect_not_a_resend(service, tina):
    client, csrf = tina
    [link] = _import(client, csrf, "username\nsam\n")
    student = TestClient(service.app, follow_redirects=False)
    r = _set_password(student, link, "one-password", again="another-password")
    assert r.status_code == 303 and "problem=differ" in r.headers["location"]
    page = student.get(r.headers["location"])
    assert page.status_code == 200 and "The two passwords differ." in page.text and ">sam</strong>" in page.text
    r = _set_password(student, link, "short")
    assert r.status_code == 303 and "at least 8 characters" in student.get(r.headers["location"]).text
    with service.db.read_session() as s:
        assert accounts.get_user(s, "sam").password_hash is None   # the link still works
    assert _set_password(student, link, "long-enough-password").status_code == 303


def test_a_ta_issues_a_one_time_expiring_reset_link_stored_hashed_and_recorded(service, tina):
    client, csrf = tina
    r = client.post("/ta/students/alice/password-reset", data={"csrf_token": csrf})
    assert r.status_code == 303
    shown = client.get(r.headers["location"]).text
    [link] = re.findall(r"http://[^<\s]+/reset-password\?token=[\w-]+", shown)
    assert "valid for 48 hours" in shown
    assert client.get(r.headers["location"]).text.count("/reset-password?token=") == 0   # shown once

    secret = link.rsplit("=", 1)[1]
    with service.db.read_session() as s:
        row = s.scalar(select(AccountLink).where(AccountLink.purpose == LinkPurpose.PASSWORD_RESET))
        tina_id = accounts.get_user(s, "tina").id
        assert row.token_hash == accounts.hash_token(secret) and secret not in row.token_hash
        assert row.issued_by == tina_id and row.used_at is None
        assert timedelta(hours=47) < row.expires_at - row.created_at <= timedelta(hours=48)

    alice = TestClient(service.app, follow_redirects=False)
    page = alice.get(_path(link))
    assert page.status_code == 200 and "Choose a new password" in page.text and ">alice</strong>" in page.text
    assert _set_password(alice, link, "alices-new-password").status_code == 303
    assert alice.get("/api/v1/me").json()["user"]["username"] == "alice"
    assert service.client.post("/api/v1/login", json={"username": "alice", "password": "alice-password"}
                               ).status_code == 401   # the forgotten password is gone
    with service.db.read_session() as s:
        assert s.get(AccountLink, row.id).used_at is not None   # the record: used, and when
    assert TestClient(service.app).get(_path(link)).status_code == 410   # one-time


def test_an_expired_reset_link_says_ask_for_a_new_one(service, tina):
    client, csrf = tina
    r = client.post("/ta/students/alice/password-reset", data={"csrf_token": csrf})
    [link] = re.findall(r"http://[^<\s]+/reset-password\?token=[\w-]+", client.get(r.headers["location"]).text)
    with service.db.session() as s, s.begin():
        s.scalar(select(AccountLink)).expires_at = utcnow() - timedelta(minutes=1)
    page = TestClient(service.app).get(_path(link))
    assert page.status_code == 410 and "expired" in page.text and "ask your TA for a new one" in page.text
    with service.db.session() as s, s.begin(), pytest.raises(accounts.AccountError, match="expired"):
        accounts.use_link(s, link.rsplit("=", 1)[1], "too-late-password")


def test_a_student_cannot_issue_a_reset_link(service):
    bob, csrf = _login(service, "bob")
    r = bob.post("/ta/students/alice/password-reset", data={"csrf_token": csrf})
    assert r.status_code == 403 and "/reset-password?token=" not in r.text
    with service.db.read_session() as s:
        assert s.scalars(select(AccountLink)).all() == []


def test_the_roster_csv_holds_a_working_link_for_each_account_not_yet_activated(service, tina):
    client, csrf = tina
    _import(client, csrf, "username,name,email\nsam,Sam S,sam@example.edu\nkim,=HYPERLINK(1),kim@example.edu\n")
    r = client.post("/ta/students/activation-links.csv", data={"csrf_token": csrf})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["username"] for x in rows] == ["kim", "sam"]   # alice, bob, tina have passwords
    assert rows[0]["name"] == "'=HYPERLINK(1)"   # a spreadsheet shows it, never runs it
    assert rows[1]["email"] == "sam@example.edu"
    student = TestClient(service.app, follow_redirects=False)
    assert _set_password(student, rows[1]["activation_link"], "sams-new-password").status_code == 303
    again = list(csv.DictReader(io.StringIO(client.post("/ta/students/activation-links.csv",
                                                        data={"csrf_token": csrf}).text)))
    assert [x["username"] for x in again] == ["kim"]
    # the download made fresh links: the first CSV's link for kim no longer works, the new one does
    assert TestClient(service.app).get(_path(rows[0]["activation_link"])).status_code == 410
    assert TestClient(service.app).get(_path(again[0]["activation_link"])).status_code == 200


def test_a_student_cannot_download_the_activation_links(service, tina):
    client, csrf = tina
    _import(client, csrf, "username\nsam\n")
    bob, bob_csrf = _login(service, "bob")
    r = bob.post("/ta/students/activation-links.csv", data={"csrf_token": bob_csrf})
    assert r.status_code == 403 and "activate?token=" not in r.text
    assert bob.get("/ta/students/activation-links.csv").status_code in (303, 403)
    assert "activate?token=" not in bob.get("/ta/students/activation-links.csv", follow_redirects=True).text
    anon = TestClient(service.app, follow_redirects=False)
    r = anon.post("/ta/students/activation-links.csv")
    assert r.status_code in (303, 401, 403) and "activate?token=" not in r.text


def test_a_ta_csv_leaves_staff_accounts_out(service, tina):
    from app.auth import admin
    admin.add_user(service.db, "newta", "ta", None)
    client, csrf = tina
    rows = list(csv.DictReader(io.StringIO(client.post("/ta/students/activation-links.csv",
                                                       data={"csrf_token": csrf}).text)))
    assert "newta" not in [x["username"] for x in rows]
    with service.db.read_session() as s:
        assert s.scalar(select(User).where(User.username == "newta")).password_hash is None


def test_the_students_page_records_who_issued_each_link_and_what_became_of_it(service, tina):
    client, csrf = tina
    r = client.post("/ta/students/alice/password-reset", data={"csrf_token": csrf})
    [link] = re.findall(r"http://[^<\s]+/reset-password\?token=[\w-]+", client.get(r.headers["location"]).text)

    def record() -> str:
        row = re.search(r'<tr id="user-alice">.*?</tr>', client.get("/ta/students?q=alice").text, re.DOTALL).group(0)
        return re.sub(r"\s+", " ", re.search(r'class="muted small link-record">(.*?)</span>', row, re.DOTALL).group(1))
    assert record().startswith("reset link by tina, ") and "; open until " in record()
    _set_password(TestClient(service.app, follow_redirects=False), link, "alices-new-password")
    assert "; used " in record()
