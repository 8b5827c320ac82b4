"""The student chooses what counts (issue 20 item 8) in the browser: on an assessment with
counts = "chosen", "Make this count" on an earlier graded submission moves the "counts" mark and
the counted score, and the TA's list follows. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture
def chosen_assessment(live_server):
    """hw1p1 with counts = "chosen", for this test only."""
    from app.course.assessments import Assessment

    data = live_server.app.state.assessments["hw1p1"].model_dump()
    a = Assessment.model_validate({**data, "slug": "chosen", "title": "HW1P1 (you choose what counts)",
                                   "counts": "chosen"})
    live_server.app.state.assessments["chosen"] = a
    try:
        yield a
    finally:
        live_server.app.state.assessments.pop("chosen", None)


def _graded(live_server, name: str, tar_path) -> int:
    import httpx

    r = httpx.post(f"{live_server.url}/api/v1/assessments/chosen/submissions", params={"wait": 240},
                   headers={"Authorization": f"Bearer {live_server.token(name)}"},
                   files={"handin": ("handin.tar", tar_path.read_bytes())}, timeout=300)
    assert r.status_code == 200 and r.json()["status"] == "graded", r.text
    return r.json()["id"]


@pytest.mark.parametrize("kind", SIZES)
def test_make_an_earlier_submission_count(new_page, live_server, chosen_assessment, handins, helpers, kind):
    from app.auth import admin

    name = f"yara-{kind}"
    admin.add_user(live_server.db, name, "student", f"{name}-password", name.title(), f"{name}@example.edu")
    good = _graded(live_server, name, handins["good"])
    _graded(live_server, name, handins["bad_linear"])

    width, height = SIZES[kind]
    page = new_page(width=width, height=height)
    page.goto("/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(f"{name}-password")
    page.get_by_role("button", name="Log in").click()
    page.goto("/assessments/chosen")
    expect(page.locator("ul#rules")).to_contain_text("unless you choose another")
    counted = page.locator("#counted-score")
    expect(counted).to_have_text(re.compile(r"^50 / 100"))             # without a choice: the latest
    expect(page.locator("#below-best")).to_contain_text("Make this count")
    first = page.locator(f'tr[data-submission="{good}"]')
    first.get_by_role("button", name="Make submission #1 count").click()

    expect(counted).to_have_text(re.compile(r"^100 / 100"))
    expect(first.locator(".badge.counts")).to_be_visible()
    expect(page.locator("tr[data-submission] .badge.counts")).to_have_count(1)
    expect(page.locator("#below-best")).to_have_count(0)
    page.reload()                                                     # posted, then redirected: no resend
    expect(counted).to_have_text(re.compile(r"^100 / 100"))
    helpers.screenshot(page, f"chosen-counts-{kind}")

    ta = new_page("tina", width=width, height=height)
    ta.goto(f"/ta/submissions?assessment=chosen&student={name}")
    row = ta.locator("table.subs tbody tr").filter(has=ta.get_by_role("link", name=str(good), exact=True))
    expect(row.locator(".badge.counts")).to_have_text("counted")
    expect(ta.locator("table.subs .badge.counts")).to_have_count(1)
