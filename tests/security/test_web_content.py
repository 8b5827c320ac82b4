"""Attacks through what the web tier serves (issue 10, items 6, 10, 11, 12): the handout
script, the gradebook CSV, headers, the API docs."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import REFERENCE

from .conftest import form_token, page_login, threaded_server

CHROMIUM = "/usr/bin/chromium"


# ---------------------------------------------------------------------------------------------
# item 6

def _run_script(text: str, folder: Path) -> subprocess.CompletedProcess:
    """Run the served script as a student would, in a handout folder, building only (--no-submit)."""
    for d in ("models", "mytorch"):   # a complete handout folder: the script checks it before building
        shutil.copytree(REFERENCE / d, folder / d, dirs_exist_ok=True)
    (folder / "create_tarball.sh").write_text(text)
    return subprocess.run(["bash", "create_tarball.sh", "--no-submit"], cwd=folder, check=False, capture_output=True,
                          text=True, timeout=120)


def test_create_tarball_script_shell_injection(web, tmp_path):
    client = web.browser()
    # The assessment value: anything but a known slug is refused.
    r = client.get("/handout/create_tarball.sh", params={"assessment": 'open";touch PWNED_SLUG;"'})
    assert r.status_code == 404
    # The Host header: the base URL comes from settings, never from the request.
    r = client.get("/handout/create_tarball.sh", params={"assessment": "open"},
                   headers={"Host": "evil.example$(touch PWNED_HOST)"})
    assert r.status_code == 200
    assert "evil.example" not in r.text and web.settings.base_url in r.text
    done = _run_script(r.text, tmp_path / "host")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "host" / "PWNED_HOST").exists()


def test_create_tarball_script_quotes_a_hostile_base_url(tmp_path):
    from .conftest import Web, make_settings

    web = Web(make_settings(tmp_path, base_url="http://h/$(touch PWNED_BASE)"))
    try:
        text = web.browser().get("/handout/create_tarball.sh", params={"assessment": "open"}).text
        done = _run_script(text, tmp_path / "h")
        assert done.returncode == 0, done.stderr
        assert not (tmp_path / "h" / "PWNED_BASE").exists()
    finally:
        web.close()


# ---------------------------------------------------------------------------------------------
# item 10

def test_csv_formula_injection_neutralised(web):
    from app.auth import accounts
    with web.db.session() as s, s.begin():
        user = accounts.get_user(s, "alice")
        user.display_name, user.email = "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0"
        accounts.get_user(s, "bob").display_name = "@SUM(1+1)"
    text = web.browser().get("/api/v1/assessments/open/gradebook.csv", headers=web.bearer("tina")).text
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row
            assert not (cell.startswith("-") and not cell.lstrip("-").replace(".", "").isdigit()), row
    names = {r[0]: r for r in rows[1:]}
    assert names["alice"][1] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert names["bob"][1] == "'@SUM(1+1)"


def test_roster_import_refuses_formula_usernames(web):
    tina = web.browser()
    page_login(tina, "tina")
    csrf = form_token(tina.get("/ta/students").text)
    roster = b"username,name\ngood-one,Good\n@SUM(1+1),Evil\n"
    r = tina.post("/ta/students/import", data={"csrf_token": csrf}, files={"roster": ("r.csv", roster)})
    assert r.status_code == 303   # post, redirect, get: the Students page says why
    assert "line 3" in tina.get(r.headers["location"]).text
    from app.auth import accounts
    with web.db.read_session() as s:   # all or nothing: the good line is not imported either
        assert accounts.get_user(s, "@SUM(1+1)") is None and accounts.get_user(s, "good-one") is None


# ---------------------------------------------------------------------------------------------
# item 11

def _assert_secure(r, where: str) -> None:
    h = r.headers
    csp = h.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (where, csp)
    assert "'unsafe-inline'" not in csp, (where, csp)
    assert h.get("x-frame-options") == "DENY", where
    assert h.get("x-content-type-options") == "nosniff", where
    assert h.get("referrer-policy"), where


def test_security_headers_on_every_page(web):
    anon = web.browser()
    for url in ("/login", "/activate?token=x", "/docs", "/openapi.json", "/healthz", "/static/app.js",
                "/api/v1/me", "/no-such-page", "/handout/create_tarball.sh"):
        _assert_secure(anon.get(url), url)
    alice = web.browser()
    page_login(alice, "alice")
    for url in ("/", "/assessments/open", "/profile", "/assessments/open/scoreboard"):
        r = alice.get(url)
        _assert_secure(r, url)
        assert r.headers["cache-control"] == "no-store", url
    tina = web.browser()
    page_login(tina, "tina")
    for url in ("/ta/students", "/ta/queue", "/ta/submissions", "/ta/assessments/open/scoreboard"):
        _assert_secure(tina.get(url), url)


def test_pages_with_secrets_are_never_cached(web):
    alice = web.browser()
    page_login(alice, "alice")
    r = alice.post("/profile/tokens", data={"name": "laptop", "csrf_token": form_token(alice.get("/profile").text)})
    r = alice.get(r.headers["location"])   # the profile, showing the new token once
    assert "gr_" in r.text and r.headers["cache-control"] == "no-store"
    tina = web.browser()
    page_login(tina, "tina")
    r = tina.post("/ta/students/alice/password-reset", data={"csrf_token": form_token(tina.get("/ta/students").text)})
    r = tina.get(r.headers["location"])   # the page the link is shown on, once
    assert "/reset-password?token=" in r.text and r.headers["cache-control"] == "no-store"
    r = web.browser().post("/api/v1/tokens", json={"name": "x"}, headers=web.bearer("bob"))
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"


# ---------------------------------------------------------------------------------------------
# item 12

def test_openapi_documents_errors_and_the_bearer_scheme(web):
    spec = web.browser().get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer",
                                 "description": schemes["bearer"]["description"]}
    submit = spec["paths"]["/api/v1/assessments/{slug}/submissions"]["post"]
    for code in ("401", "403", "404", "413", "429"):
        ref = submit["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody")
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "message"}
    assert {"bearer": []} in submit["security"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_api_docs_work_offline(tmp_path):
    """/docs in a browser that can reach nothing but the grader: Swagger UI renders, and the
    Content-Security-Policy reports nothing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from .conftest import make_settings

    settings = make_settings(tmp_path)
    with threaded_server(settings) as (base, _app), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            outside, problems = [], []
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                       else (outside.append(route.request.url), route.abort()))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/docs")
            sync_api.expect(page.get_by_text("/api/v1/assessments/{slug}/submissions").first).to_be_visible(
                timeout=60_000)
            sync_api.expect(page.get_by_role("button", name="Authorize")).to_be_visible()
            assert outside == [] and problems == [], (outside, problems)
        finally:
            browser.close()


def test_docs_page_has_no_inline_script(web):
    html = web.browser().get("/docs").text
    assert "cdn" not in html.lower()
    assert "<script>" not in html and "<script src=" in html
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css",
                  "/static/docs/init.js"):
        assert web.browser().get(asset).status_code == 200, asset
