"""Attacks on accounts and sessions through the web tier (issue 10, items 2, 7, 8, 9, 13).

Each test is named after the attack and reproduces it against the app (TestClient) or a real
uvicorn configured as `grader serve` configures it."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from app.auth import accounts
from app.store.models import AccountLink, RateLimitHit, User

from .conftest import ACCOUNTS, Web, form_token, make_settings, page_login, threaded_server


def _session_cookie(client) -> str:
    return client.cookies.get("grader_session")


def _me(web, cookie: str) -> int:
    """What a stolen copy of a session cookie gets from the API."""
    c = web.browser()
    c.cookies.set("grader_session", cookie)
    return c.get("/api/v1/me").status_code


# ---------------------------------------------------------------------------------------------
# item 2: role order

def test_ta_cannot_take_over_admin_via_activation_link(web):
    tina = web.browser()
    assert page_login(tina, "tina").status_code == 303
    csrf = form_token(tina.get("/ta/students").text)
    for target in ("ada", "tom"):       # an admin, another TA
        r = tina.post(f"/ta/students/{target}/activation", data={"csrf_token": csrf})
        assert r.status_code == 403, r.text
        assert "/activate?token=" not in r.text
        r = tina.post(f"/ta/students/{target}/password-reset", data={"csrf_token": csrf})
        assert r.status_code == 403 and "/reset-password?token=" not in r.text
    with web.db.read_session() as s:
        staff = select(User.id).where(User.username.in_(("ada", "tom")))
        assert s.scalar(select(func.count()).select_from(AccountLink).where(AccountLink.user_id.in_(staff))) == 0
    # A TA still makes links for students; an admin for staff (shown once on the page redirected to).
    r = tina.post("/ta/students/alice/password-reset", data={"csrf_token": csrf})
    assert "/reset-password?token=" in tina.get(r.headers["location"]).text
    ada = web.browser()
    page_login(ada, "ada")
    csrf = form_token(ada.get("/ta/students").text)
    r = ada.post("/ta/students/tom/password-reset", data={"csrf_token": csrf})
    assert "/reset-password?token=" in ada.get(r.headers["location"]).text


def test_ta_cannot_change_staff_roles_or_make_staff(web):
    tina = web.browser()
    page_login(tina, "tina")
    csrf = form_token(tina.get("/ta/students").text)
    for target, role in (("tom", "student"), ("ada", "student"), ("alice", "ta"), ("alice", "admin")):
        r = tina.post(f"/ta/students/{target}/role", data={"role": role, "csrf_token": csrf})
        assert r.status_code == 303   # back to the Students page, which says why not
        assert "Only an admin can change" in tina.get(r.headers["location"]).text
    with web.db.read_session() as s:
        roles = dict(s.execute(select(User.username, User.role)).all())
    assert {k: roles[k] for k in ACCOUNTS} == ACCOUNTS


def test_ta_cannot_give_staff_extensions(web):
    r = web.browser().put("/api/v1/assessments/open/extensions/tom", json={"days": 3}, headers=web.bearer("tina"))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert web.browser().put("/api/v1/assessments/open/extensions/alice", json={"days": 3},
                             headers=web.bearer("tina")).status_code == 200


# ---------------------------------------------------------------------------------------------
# item 7: login CSRF

def test_login_csrf_from_foreign_origin(web):
    """A foreign page posts the attacker's credentials to /login in the victim's browser."""
    victim = web.browser()
    forged = {"username": "bob", "password": "bob-password", "next": "/"}
    r = victim.post("/login", data=forged, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "grader_session" not in r.headers.get("set-cookie", "")
    r = victim.post("/login", data=forged)   # no Origin (old browsers, privacy settings): no token either
    assert r.status_code == 403 and "grader_session" not in r.headers.get("set-cookie", "")
    r = victim.post("/api/v1/login", json={"username": "bob", "password": "bob-password"},
                    headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "grader_session" not in r.headers.get("set-cookie", "")
    assert victim.get("/api/v1/me").status_code == 401
    # Our own login page still works.
    assert page_login(victim, "bob").status_code == 303


def test_logged_in_form_post_from_foreign_origin_is_refused(web):
    alice = web.browser()
    page_login(alice, "alice")
    csrf = form_token(alice.get("/profile").text)
    r = alice.post("/profile/nickname", data={"nickname": "pwned-nick", "csrf_token": csrf},
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


# ---------------------------------------------------------------------------------------------
# item 8: sessions end

def test_session_cookie_dies_on_logout(web):
    alice = web.browser()
    page_login(alice, "alice")
    stolen = _session_cookie(alice)
    assert _me(web, stolen) == 200
    csrf = form_token(alice.get("/profile").text)
    assert alice.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert _me(web, stolen) == 401


def test_session_cookie_dies_on_api_logout(web):
    c = web.browser()
    csrf = c.post("/api/v1/login", json={"username": "bob", "password": "bob-password"}).json()["csrf_token"]
    stolen = _session_cookie(c)
    c.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
    assert _me(web, stolen) == 401


def test_session_cookie_dies_on_password_change(web):
    alice = web.browser()
    page_login(alice, "alice")
    stolen = _session_cookie(alice)
    with web.db.session() as s, s.begin():   # every password change goes through accounts.set_password
        accounts.set_password(accounts.get_user(s, "alice"), "a-brand-new-password")
    assert _me(web, stolen) == 401


def test_session_cookie_dies_on_password_reset(web):
    alice = web.browser()
    page_login(alice, "alice")
    stolen = _session_cookie(alice)
    tina = web.browser()
    page_login(tina, "tina")
    r = tina.post("/ta/students/alice/password-reset", data={"csrf_token": form_token(tina.get("/ta/students").text)})
    link = tina.get(r.headers["location"]).text.split("/reset-password?token=")[1].split("<")[0]
    other = web.browser()
    token = form_token(other.get(f"/reset-password?token={link}").text)
    r = other.post("/reset-password", data={"token": link, "password": "reset-password",
                                            "password2": "reset-password", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].startswith("/?shown=")
    assert _me(web, stolen) == 401


def test_session_cookie_dies_on_role_change(web):
    tom = web.browser()
    page_login(tom, "tom")
    stolen = _session_cookie(tom)
    ada = web.browser()
    page_login(ada, "ada")
    csrf = form_token(ada.get("/ta/students").text)
    r = ada.post("/ta/students/tom/role", data={"role": "student", "csrf_token": csrf})
    assert r.status_code == 303 and "tom is now student." in ada.get(r.headers["location"]).text
    assert _me(web, stolen) == 401


# ---------------------------------------------------------------------------------------------
# item 9: the login rate limiter

def test_login_rate_limit_does_not_lock_out_real_user(tmp_path):
    web = Web(make_settings(tmp_path, login_attempts_per_minute=3, login_attempts_per_minute_per_client=100))
    try:
        alice = web.browser()
        assert page_login(alice, "alice").status_code == 303    # alice has used this browser before
        alice.post("/logout", data={"csrf_token": form_token(alice.get("/profile").text)})
        attacker = web.browser()                                  # same address (a shared NAT, a proxy)
        codes = [page_login(attacker, "alice", f"guess-{i}").status_code for i in range(8)]
        # alice's own first login counted on the account: two guesses left, then the account is shut
        assert codes[:2] == [401] * 2 and set(codes[2:]) == {429}   # to strangers...
        assert page_login(alice, "alice").status_code == 303      # ...and alice still gets in
    finally:
        web.close()


def test_login_rate_limit_per_client_covers_every_account(tmp_path):
    web = Web(make_settings(tmp_path, login_attempts_per_minute=100, login_attempts_per_minute_per_client=5))
    try:
        c = web.browser()
        codes = [c.post("/api/v1/login", json={"username": f"user{i}", "password": "x" * 8}).status_code
                 for i in range(8)]
        assert codes == [401] * 5 + [429] * 3
    finally:
        web.close()


def test_rate_limiter_memory_bounded_by_huge_usernames(tmp_path):
    web = Web(make_settings(tmp_path, login_attempts_per_minute_per_client=20))
    try:
        c = web.browser()
        huge = "u" * (1 << 20)
        for _ in range(5):   # a 1 MiB username is refused before anything is counted or stored
            assert c.post("/api/v1/login", json={"username": huge, "password": "x" * 8}).status_code == 413
            token = form_token(c.get("/login").text)
            assert c.post("/login", data={"username": huge, "password": "x", "csrf_token": token}).status_code == 413
        # Many distinct long usernames: the per-client limit stops them, and what is stored is
        # fixed-size hashes, at most one row per allowed attempt and key.
        for i in range(100):
            c.post("/api/v1/login", json={"username": f"{i:03d}" + "x" * 97, "password": "x" * 8})
        with web.db.read_session() as s:
            rows = s.scalar(select(func.count()).select_from(RateLimitHit))
            longest = s.scalar(select(func.max(func.length(RateLimitHit.key))))
        assert rows <= 2 * 20 and longest == 64
    finally:
        web.close()


def test_rate_limit_is_shared_by_web_processes(tmp_path):
    """Two app instances (two web processes) on one database count the same attempts."""
    settings = make_settings(tmp_path, login_attempts_per_minute=4)
    first, second = Web(settings), Web(settings)
    try:
        codes = [(first if i % 2 else second).browser().post(
            "/api/v1/login", json={"username": "bob", "password": "x" * 8}).status_code for i in range(6)]
        assert codes == [401] * 4 + [429] * 2
    finally:
        first.close()
        second.close()


def test_x_forwarded_for_not_trusted_from_unconfigured_proxy(tmp_path):
    settings = make_settings(tmp_path, login_attempts_per_minute_per_client=5)
    with threaded_server(settings) as (base, _app):
        codes = [httpx.post(f"{base}/api/v1/login", json={"username": f"user{i}", "password": "x" * 8},
                            headers={"X-Forwarded-For": f"203.0.113.{i}"}, timeout=60).status_code
                 for i in range(8)]
    assert codes == [401] * 5 + [429] * 3     # one client, whatever it claims to forward for


def test_x_forwarded_for_trusted_from_configured_proxy(tmp_path):
    settings = make_settings(tmp_path, login_attempts_per_minute_per_client=2, trusted_proxies="127.0.0.1")
    with threaded_server(settings) as (base, _app):
        codes = [httpx.post(f"{base}/api/v1/login", json={"username": f"user{i}", "password": "x" * 8},
                            headers={"X-Forwarded-For": f"203.0.113.{i}"}, timeout=60).status_code
                 for i in range(4)]
    assert codes == [401] * 4                 # the proxy's clients are told apart


# ---------------------------------------------------------------------------------------------
# item 13

def test_login_page_while_logged_in_does_not_show_an_empty_form(web):
    alice = web.browser()
    page_login(alice, "alice")
    r = alice.get("/login", params={"next": "/profile"})
    assert r.status_code == 303 and r.headers["location"] == "/profile"
    r = alice.get("/login", params={"next": "//evil.example"})
    assert r.status_code == 303 and r.headers["location"] == "/"
