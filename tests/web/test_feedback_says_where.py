"""Feedback that says where (issue 20 items 3, 4 and 6), read in the browser at 1280 and 390 px:
a test the time limit stopped names itself and the line that was running, with a script to rebuild
it; a syntax error links its file and line and its tests' "Not run" lines collapse into one. (A
handin missing a graded file is refused at upload, listing them: tests/service; `grader grade`
lists them in one note: tests/grader/test_feedback.py.)"""

from __future__ import annotations

import re

import httpx
import pytest
from support import make_tar, reference_files

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
LOSS, ACT = "mytorch/nn/loss.py", "mytorch/nn/activation.py"


def _submit(live_server, username: str, files: dict[str, bytes]) -> int:
    from app.auth import admin

    admin.add_user(live_server.db, username, "student", f"{username}-password", username.title(),
                   f"{username}@example.edu")
    with httpx.Client(base_url=live_server.url, timeout=300) as client:
        r = client.post("/api/v1/assessments/hw1p1/submissions", params={"wait": 240},
                        headers={"Authorization": f"Bearer {live_server.token(username)}"},
                        files={"handin": ("handin.tar", make_tar(files))})
    assert r.status_code == 200 and r.json()["status"] == "graded", r.text
    return r.json()["id"]


def _page(new_page, username: str, kind: str):
    width, height = SIZES[kind]
    page = new_page(width=width, height=height)
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name="Assessments")).to_be_visible()
    return page


def _no_sideways_scroll(page) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide} px"


@pytest.fixture(scope="module")
def stuck(live_server) -> int:
    """A handin whose MSELoss.backward never returns and whose activation.py does not parse."""
    files = reference_files()
    loss = files[LOSS].decode()
    assert "    def backward(self):\n        return 2 * (self.A - self.Y)" in loss
    files[LOSS] = loss.replace("    def backward(self):\n        return 2 * (self.A - self.Y)",
                               "    def backward(self):\n        while True:\n            pass\n"
                               "        return 2 * (self.A - self.Y)", 1).encode()
    files[ACT] = files[ACT].replace(b"import numpy as np\n", b"import numpy as np\nx = = 3\n", 1)
    return _submit(live_server, "stuart", files)


@pytest.mark.parametrize("kind", SIZES)
def test_time_limits_and_import_errors_say_where(new_page, stuck, helpers, kind):
    page = _page(new_page, "stuart", kind)
    page.goto(f"/submissions/{stuck}")
    lines = (reference_files()[LOSS].decode().replace(
        "    def backward(self):\n        return 2 * (self.A - self.Y)",
        "    def backward(self):\n        while True:\n            pass\n", 1)).splitlines()
    loop_lines = {i + 1 for i, text in enumerate(lines) if text.strip() in ("while True:", "pass")}

    # The time limit: the test that was running, named, with the line, its stack and a script.
    loss = page.locator("article.failure", has=page.get_by_role("heading", name=re.compile("^Loss")))
    expect(loss).to_contain_text('Time limit exceeded')
    killed = loss.locator("details.test", has_text="handout case: MSELoss")
    expect(killed).to_have_count(1)
    text = killed.inner_text()
    assert "Not run" not in text, text
    found = re.search(r"It was running mytorch/nn/loss\.py, line (\d+)\.", text)
    assert found and int(found.group(1)) in loop_lines, text
    assert 'File "mytorch/nn/loss.py"' in text and "in backward" in text, text
    expect(killed.locator("pre.reproduce")).to_contain_text("MSELoss")
    expect(killed.locator(f"a[href$='/source?path=mytorch%2Fnn%2Floss.py&line={found.group(1)}#L-{found.group(1)}']")
           ).to_have_count(1)
    expect(loss).to_contain_text(re.compile(r"\d+ later tests? not reached"))

    # The syntax error: one message, a link to its line, no "Not run" line per test.
    act = page.locator("article.failure", has=page.get_by_role("heading", name=re.compile("^Activation")))
    expect(act.locator("pre.message").first).to_contain_text("mytorch/nn/activation.py has a syntax error on line 3")
    expect(act.get_by_role("link", name="mytorch/nn/activation.py, line 3")).to_have_attribute(
        "href", f"/submissions/{stuck}/source?path=mytorch%2Fnn%2Factivation.py&line=3#L-3")
    expect(act).to_contain_text(re.compile(r"\d+ tests not run: the error above stops them"))
    assert page.get_by_text("could not be imported").count() == 0
    expect(act.locator("details.test")).to_have_count(0)

    _no_sideways_scroll(page)
    helpers.screenshot(page, f"feedback-time-limit-and-import-error-{kind}")

    # The link opens the source at the syntax error's line, the error boxed below it (item 6).
    act.get_by_role("link", name="mytorch/nn/activation.py, line 3").click()
    expect(page.locator("#L-3")).to_be_visible()
    expect(page.locator("#L-3 + span.inline-error")).to_contain_text("has a syntax error on line 3")
    # ... and the time limit's line says what happened there.
    line = found.group(1)
    page.goto(f"/submissions/{stuck}/source?path=mytorch%2Fnn%2Floss.py&line={line}#L-{line}")
    expect(page.locator(f"#L-{line} + span.inline-error")).to_contain_text("Time limit exceeded")
    helpers.screenshot(page, f"source-time-limit-line-{kind}")
