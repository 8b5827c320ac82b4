"""Feedback a student can act on (issue 20 items 4, 5, 6), in the browser at 1280 and 390 px:
reproduce scripts copy with one click and fit a phone; tokens and the curl lines copy too, the new
token filled in; a value wrong in a classic way carries one non-scoring hint, a correct handin
none; the source view opens the failing file at the line that assigns the wrong value, with lines
of context above it and the error boxed below it, and marks the failing files in the tree."""

from __future__ import annotations

import re

import httpx
import pytest
from support import make_tar, reference_files

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
LINEAR, LOSS, BN = "mytorch/nn/linear.py", "mytorch/nn/loss.py", "mytorch/nn/batchnorm.py"
EDITS = (
    (LINEAR, "self.dLdW = dLdZ.T @ self.A", "self.dLdW = dLdZ.T @ self.A / self.N"),     # 1/N: a hint
    (LOSS, "return np.sum(se) / (self.N * self.C)", "return np.sum(se)"),                 # N*C times: a hint
    (BN, "self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)", "self.dLdBb = np.sum(dLdBZ, axis=3)"),  # raises
)


def _files(edits) -> dict[str, bytes]:
    files = reference_files()
    for path, old, new in edits:
        text = files[path].decode()
        assert old in text, (path, old)
        files[path] = text.replace(old, new, 1).encode()
    return files


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


def _page(new_page, live_server, username: str, kind: str):
    width, height = SIZES[kind]
    page = new_page(width=width, height=height)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
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
def mistakes(live_server) -> int:
    return _submit(live_server, "mina", _files(EDITS))


@pytest.fixture(scope="module")
def correct(live_server) -> int:
    return _submit(live_server, "cora", reference_files())


def _shot(page, locator, helpers, name: str) -> None:
    """The window (these pages run long: a full-page shot of them took over a minute here), at LOCATOR."""
    if locator is not None:
        locator.scroll_into_view_if_needed()
    helpers.screenshot_dir.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(helpers.screenshot_dir / f"{name}.png"))


def _section(page, name: str):
    return page.locator("article.failure", has=page.get_by_role("heading", name=re.compile(f"^{name}")))


@pytest.mark.parametrize("kind", SIZES)
def test_hints_for_classic_mistakes_and_none_on_a_correct_handin(new_page, live_server, mistakes, correct,
                                                                 helpers, kind):
    page = _page(new_page, live_server, "mina", kind)
    page.goto(f"/submissions/{mistakes}")
    linear_hint = _section(page, "Linear Layer").locator("details.test[open] p.hint").first
    expect(linear_hint).to_contain_text(re.compile(r"Linear\.dLdW after backward .* is exactly 1/\d+ of the expected"))
    expect(linear_hint).to_contain_text("does not change your score")
    expect(_section(page, "Loss").locator("details.test[open] p.hint").first).to_contain_text(
        re.compile(r"L = MSELoss\.forward\(A, Y\) is exactly \d+ times the expected value"))
    # the exception in Batch Norm is no classic mistake: no hint there
    expect(_section(page, "Batch Norm").locator("p.hint")).to_have_count(0)
    _no_sideways_scroll(page)
    _shot(page, linear_hint, helpers, f"feedback-hints-{kind}")

    good = _page(new_page, live_server, "cora", kind)
    good.goto(f"/submissions/{correct}")
    expect(good.locator("#result-summary")).to_contain_text("every section passed")
    expect(good.locator("p.hint")).to_have_count(0)


@pytest.mark.parametrize("kind", SIZES)
def test_reproduce_scripts_copy_and_fit_a_phone(new_page, live_server, mistakes, helpers, kind):
    page = _page(new_page, live_server, "mina", kind)
    page.goto(f"/submissions/{mistakes}")
    loss = _section(page, "Loss")
    loss.locator("details.test[open] details.reproduce-box > summary").first.click()
    script = loss.locator("details.test[open] pre.reproduce").first
    expect(script).to_contain_text("def check(label, got, expected, kind")
    expect(script).to_contain_text("check('L = MSELoss.forward(A, Y)'")
    loss.locator("details.test[open]").get_by_role("button", name="Copy the script").first.click()
    expect(loss.locator("details.test[open]").get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == script.text_content()
    if kind == "phone":   # nothing hides past the screen's edge: the script shows its whole width
        assert script.evaluate("e => e.scrollWidth - e.clientWidth") <= 1
    _no_sideways_scroll(page)
    _shot(page, loss.get_by_role("button", name="Copy the script").first, helpers, f"feedback-reproduce-copy-{kind}")

    # tokens: the new one copies, and the curl lines carry it
    page.goto("/profile")
    page.get_by_label("Token name").fill(f"laptop-{kind}")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert len(token) > 20
    page.get_by_role("button", name="Copy the token").click()
    assert page.evaluate("navigator.clipboard.readText()") == token
    lines = page.locator("#curl-lines")
    expect(lines).to_contain_text(f"GRADER_TOKEN={token} bash create_tarball.sh")
    page.get_by_role("button", name="Copy the lines").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl -s ") and f"GRADER_TOKEN={token} bash create_tarball.sh" in copied, copied
    if kind == "phone":
        assert lines.evaluate("e => e.scrollWidth - e.clientWidth") <= 1
    box, card = page.locator("#new-token").bounding_box(), page.locator("#new-token").locator("xpath=..").bounding_box()
    if kind == "phone":
        assert box["width"] >= card["width"] - 40, (box, card)   # the token box takes the width
    _no_sideways_scroll(page)
    helpers.screenshot(page, f"profile-token-copy-{kind}")


@pytest.mark.parametrize("kind", SIZES)
def test_source_view_opens_the_failing_line_with_context_and_the_error(new_page, live_server, mistakes,
                                                                        helpers, kind):
    page = _page(new_page, live_server, "mina", kind)
    linear_lines = _files(EDITS)[LINEAR].decode().splitlines()
    assign = next(i for i, text in enumerate(linear_lines, 1) if text.strip().startswith("self.dLdW ="))
    page.goto(f"/submissions/{mistakes}")
    # a wrong value points at the line that assigns it
    look = _section(page, "Linear Layer").locator("details.test[open]").get_by_role(
        "link", name=f"{LINEAR}, line {assign}")
    expect(look).to_have_count(1)
    look.click()
    expect(page.locator(f"#L-{assign}")).to_be_in_viewport()
    expect(page.locator(f"#L-{assign - 3}")).to_be_in_viewport()    # context above the line
    top = page.locator(f"#L-{assign}").bounding_box()["y"]
    assert top > 60, top
    note = page.locator(f"#L-{assign} + span.inline-error")
    expect(note).to_contain_text("Linear.dLdW after backward")
    expect(note).to_contain_text("values differ")
    _no_sideways_scroll(page)
    _shot(page, None, helpers, f"source-value-mismatch-{kind}")

    # opened without a path: the first failing file, its failing line, the tree marking every failing file
    page.goto(f"/submissions/{mistakes}/source")
    expect(page.locator("#file-h")).to_contain_text(LINEAR)
    tree = page.locator("nav.file-tree")
    for path in (LINEAR, LOSS, BN):
        expect(tree.locator(f"a[href='?path={path}'] + span.bad")).to_have_count(1)
    expect(tree.locator("a[href='?path=mytorch/optim/sgd.py'] + span.bad")).to_have_count(0)
    # the exception's own line, its error boxed below it
    page.goto(f"/submissions/{mistakes}/source?path={BN.replace('/', '%2F')}")
    bn_lines = _files(EDITS)[BN].decode().splitlines()
    raising = next(i for i, text in enumerate(bn_lines, 1) if "axis=3" in text)
    expect(page.locator(f"#L-{raising} + span.inline-error")).to_contain_text("AxisError")
    _shot(page, page.locator(f"#L-{raising}"), helpers, f"source-inline-error-{kind}")
