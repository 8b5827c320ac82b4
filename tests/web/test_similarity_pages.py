"""The TA's similarity report in a real browser: the archive added from the page, the report started
and followed while it runs in the background, pairs within the class and against the archive, read
side by side with both students' full names and submissions, and marked reviewed. Screenshots at
1280x800 and 390 px wide."""

from __future__ import annotations

import re

import pytest
from support import make_tar, reference_files

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect


def _archive(tmp_path):
    """An earlier semester: the reference with its names changed (what bob and carol both resemble)."""
    files = {f"f24/sam/{p}": data.replace(b"self.A", b"self.inputs").replace(b"dLdZ", b"grad")
             for p, data in reference_files().items()}
    path = tmp_path / "f24.tar"
    path.write_bytes(make_tar(files))
    return path


def _run_report(page, threshold: str = "50"):
    page.get_by_label("List pairs at or above").fill(threshold)
    page.get_by_role("button", name="Start a report").click()
    expect(page.locator("#similarity-progress, #sim-pairs").first).to_be_visible()
    expect(page.locator("#sim-pairs")).to_be_visible(timeout=300_000)


def test_ta_adds_an_archive_runs_a_report_and_reviews_a_pair(new_page, seeded, helpers, tmp_path):
    page = new_page("tina", height=800)
    page.goto("/ta/assessments/hw1p1/scoreboard")
    page.get_by_role("link", name="Similarity report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Similarity"))
    page.get_by_label("Source").fill("F24 semester")
    page.get_by_label("Handins (tar or zip)").set_input_files(str(_archive(tmp_path)))
    page.get_by_role("button", name="Add to the archive").click()
    expect(page.locator("#similarity-notice")).to_contain_text("Added 1 handin(s) to the archive")
    expect(page.locator("#similarity-archive")).to_contain_text("F24 semester")
    page.reload()                                   # posted, then redirected: a reload resends nothing
    expect(page.locator("#similarity-archive")).to_contain_text("F24 semester")
    helpers.screenshot(page, "ta-similarity-index-desktop")
    _run_report(page)
    # bob and carol both handed in (nearly) the reference: they pair, and each matches the archive.
    pair = page.locator("#similarity-pairs tbody tr").filter(has_text="Bob Brown").filter(has_text="Carol")
    expect(pair).to_have_count(1)
    archived = page.locator("#similarity-archive-pairs tbody tr").filter(has_text="F24 semester / sam")
    expect(archived.filter(has_text="Carol")).to_have_count(1)
    helpers.screenshot(page, "ta-similarity-report-desktop")
    archived.filter(has_text="Carol").get_by_role("link", name="Side by side").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Carol")
    expect(page.get_by_role("heading", level=1)).to_contain_text("F24 semester / sam")
    expect(page.locator("pre.source mark").first).to_be_visible()
    submission = page.get_by_role("link", name=re.compile(r"submission #\d+"))
    expect(submission).to_have_count(1)
    page.get_by_role("button", name="Mark reviewed").click()
    expect(page.locator("#review-state")).to_contain_text("Reviewed by tina")
    helpers.screenshot(page, "ta-similarity-pair-desktop")
    page.get_by_role("link", name=re.compile("Back to report")).click()
    expect(page.locator("#similarity-archive-pairs tbody tr").filter(has_text="Carol")
           .filter(has_text="F24 semester / sam")).to_contain_text("✓ tina")
    # The class pair links to both students' submissions.
    # (Bob may pair with others too, as the seeded class grows: the row of bob and carol's pair)
    pair.get_by_role("link", name="Side by side").click()
    expect(page.get_by_role("link", name=re.compile(r"submission #\d+"))).to_have_count(2)


def test_similarity_pages_on_a_phone(new_page, seeded, helpers):
    page = new_page("tina", width=390, height=844)
    page.goto("/ta/assessments/hw1p1/similarity")
    helpers.screenshot(page, "ta-similarity-index-mobile")
    _run_report(page)
    helpers.screenshot(page, "ta-similarity-report-mobile")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the report page is {width} px wide on a 390 px screen"
    page.get_by_role("link", name="Side by side").first.click()
    expect(page.locator("pre.source mark").first).to_be_visible()
    helpers.screenshot(page, "ta-similarity-pair-mobile")


def test_students_get_no_similarity_page(new_page):
    page = new_page("alice")
    response = page.goto("/ta/assessments/hw1p1/similarity")
    assert response.status == 403
