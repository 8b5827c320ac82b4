"""The TA's similarity report in a real browser: started from the scoreboard, followed while it
runs in the background, read side by side."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect


def test_ta_runs_a_similarity_report_and_reads_a_pair_side_by_side(new_page, seeded, helpers):
    page = new_page("tina")
    page.goto("/ta/assessments/hw1p1/scoreboard")
    page.get_by_role("link", name="Similarity report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Similarity"))
    page.get_by_label("List pairs at or above").fill("50")
    page.get_by_role("button", name="Start a report").click()
    expect(page.locator("#similarity-progress, #sim-pairs").first).to_be_visible()
    # bob and carol both handed in (nearly) the reference: the report must pair them (other tests'
    # students may pair too).
    expect(page.locator("#sim-pairs")).to_be_visible(timeout=300_000)
    pair = page.locator("#similarity-pairs tbody tr").filter(has_text="bob").filter(has_text="carol")
    expect(pair).to_have_count(1)
    helpers.screenshot(page, "ta-similarity-report-desktop")
    pair.get_by_role("link", name="Side by side").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("bob and carol")
    expect(page.locator("pre.source mark").first).to_be_visible()
    helpers.screenshot(page, "ta-similarity-pair-desktop")


def test_similarity_pair_page_on_a_phone(new_page, seeded, helpers):
    page = new_page("tina", width=390, height=844)
    page.goto("/ta/assessments/hw1p1/similarity")
    page.get_by_role("button", name="Start a report").click()
    expect(page.locator("#sim-pairs")).to_be_visible(timeout=300_000)
    page.get_by_role("link", name="Side by side").first.click()
    expect(page.locator("pre.source mark").first).to_be_visible()
    helpers.screenshot(page, "ta-similarity-pair-mobile")


def test_students_get_no_similarity_page(new_page):
    page = new_page("alice")
    response = page.goto("/ta/assessments/hw1p1/similarity")
    assert response.status == 403
