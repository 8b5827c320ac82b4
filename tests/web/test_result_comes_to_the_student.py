"""The result comes to the student (issue 20 item 1): after an upload the assessment page brings
the new submission's live status into view and, once graded, its score, what failed and a link
to the feedback; the feedback page starts with a one-line summary of what failed, with jump
links, above the fold at 1280x800 and on a phone (390 px)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture
def student(new_page, live_server):
    from app.auth import admin

    def make(name: str, width: int, height: int):
        admin.add_user(live_server.db, name, "student", f"{name}-password", name.title(), f"{name}@example.edu")
        page = new_page(width=width, height=height)
        page.goto("/login")
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password").fill(f"{name}-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", level=1, name="Assessments")).to_be_visible()
        return page
    return make


def _in_view(page, locator) -> None:
    """Wholly inside the window as it is now (no scrolling by the test)."""
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, (box, height)


@pytest.mark.parametrize("kind", SIZES)
def test_the_new_submissions_status_and_result_come_into_view(student, live_server, handins, helpers, kind):
    width, height = SIZES[kind]
    page = student(f"uma-{kind}", width, height)
    page.goto("/assessments/hw1p1")
    live_server.gate.clear()   # hold the workers: the new submission is seen queued first
    try:
        page.get_by_label(re.compile("Your handin archive")).set_input_files(str(handins["bad_linear"]))
        page.get_by_role("button", name="Submit", exact=True).click()
        just = page.locator("#just-submitted")
        expect(just).to_contain_text("Submission received: #1")
        expect(just.locator("[data-status]")).to_have_text("queued")
        _in_view(page, just)
        page.screenshot(path=str(helpers.screenshot_dir / f"upload-live-status-{kind}.png"))
    finally:
        live_server.gate.set()
    expect(just).to_contain_text("graded: 50 / 100", timeout=120_000)
    expect(just).to_contain_text("Linear Layer")
    _in_view(page, just)
    page.screenshot(path=str(helpers.screenshot_dir / f"upload-graded-result-{kind}.png"))

    just.get_by_role("link", name="See what failed").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("submission #1")
    summary = page.locator("#result-summary")
    expect(summary).to_contain_text("50 / 100")
    expect(summary).to_contain_text("Failed:")
    _in_view(page, summary)
    page.screenshot(path=str(helpers.screenshot_dir / f"feedback-summary-{kind}.png"))
    links = summary.get_by_role("link")
    names = links.all_inner_texts()
    assert "Linear Layer" in names and "Batch Norm" not in names, names
    summary.get_by_role("link", name="Linear Layer").click()
    expect(page).to_have_url(re.compile(r"#sec-\d+$"))
    _in_view(page, page.locator("article.failure h3", has_text="Linear Layer"))


def test_a_passing_submission_says_so_in_one_line(student, handins):
    page = student("vera", 1280, 800)
    page.goto("/assessments/hw1p1")
    page.get_by_label(re.compile("Your handin archive")).set_input_files(str(handins["good"]))
    page.get_by_role("button", name="Submit", exact=True).click()
    just = page.locator("#just-submitted")
    expect(just).to_contain_text("graded: 100 / 100", timeout=120_000)
    just.get_by_role("link", name="See the feedback").click()
    expect(page.locator("#result-summary")).to_have_text(re.compile(r"100 / 100 · every section passed"))


def _graded_by_api(live_server, name: str, tar_path) -> int:
    import httpx

    r = httpx.post(f"{live_server.url}/api/v1/assessments/hw1p1/submissions", params={"wait": 240},
                   headers={"Authorization": f"Bearer {live_server.token(name)}"},
                   files={"handin": ("handin.tar", tar_path.read_bytes())}, timeout=300)
    assert r.status_code == 200 and r.json()["status"] == "graded", r.text
    return r.json()["id"]


@pytest.mark.parametrize("kind", SIZES)
def test_the_assessment_total_on_a_submission_that_does_not_count_names_the_one_it_comes_from(
        student, live_server, handins, helpers, kind):
    width, height = SIZES[kind]
    page = student(f"wes-{kind}", width, height)
    first = _graded_by_api(live_server, f"wes-{kind}", handins["good"])
    second = _graded_by_api(live_server, f"wes-{kind}", handins["bad_linear"])   # the latest counts

    page.goto(f"/submissions/{first}")
    total = page.locator("#assessment-total")
    expect(total).to_have_text(re.compile(r"^55 \(from submission #2\)$"))   # 50 + the early bonus
    link = total.get_by_role("link", name="submission #2")
    expect(link).to_have_attribute("href", f"/submissions/{second}")
    total.scroll_into_view_if_needed()
    page.screenshot(path=str(helpers.screenshot_dir / f"feedback-total-from-another-{kind}.png"))
    link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("submission #2")
    expect(page.locator("#assessment-total")).to_have_text("55")   # the counted one names no other
