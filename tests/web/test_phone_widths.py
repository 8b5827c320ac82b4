"""Phones (issue 20 item 16), measured at 390 px rather than judged by eye: no page, select or
table wider than the screen on the Students, Submissions and similarity pages; scores never wrap
onto two lines; token boxes take the full width; /docs has a viewport and a way back; the ✓/✗
section marks carry their names where there is no hover (an accessible name on each mark and a
visible legend). Screenshots at 390 and 1280 px."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

PHONE = {"width": 390, "height": 844}

# Everything measured on one page, in the browser: what overflows the screen and which scores
# take more than one line (a Range's client rects: one per line box the text sits on).
MEASURE = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll("select, table, input, pre, .table-wrap, form")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;                      // not shown
    if (box.right > width + 0.5 || box.left < -0.5)
      wide.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className ? "." + el.className : ""}: ${Math.round(box.left)}..${Math.round(box.right)}`);
  }
  const wrapped = [];
  for (const el of document.querySelectorAll(".num, .score, [data-score]")) {
    if (!el.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    if (tops.size > 1) wrapped.push(`${el.tagName.toLowerCase()}.${el.className}: "${el.textContent.trim()}"`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, wide, wrapped};
}"""


def _fits(page, what: str) -> None:
    m = page.evaluate(MEASURE)
    assert m["scrollWidth"] <= m["width"], f"{what}: the page is {m['scrollWidth']} px wide on {m['width']}: {m['wide']}"
    assert not m["wide"], f"{what}: wider than the screen: {m['wide']}"
    assert not m["wrapped"], f"{what}: scores on two lines: {m['wrapped']}"


def _marks_are_named(page, what: str) -> None:
    """Every ✓/✗ has the section's name and its result as its accessible name, and the page shows
    (not only on hover) which section each position is."""
    marks = page.locator("ul.marks li")
    assert marks.count() > 0, f"{what}: no section marks to check"
    for i in range(min(marks.count(), 16)):
        label = marks.nth(i).get_attribute("aria-label") or ""
        assert re.fullmatch(r".+ (passed|failed)( \(\d+ / \d+\))?", label), f"{what}: mark {i} is labelled {label!r}"
    legend = page.locator(".marks-legend").first
    expect(legend).to_be_visible()
    expect(legend).to_contain_text("Linear Layer")
    expect(legend).to_contain_text("Batch Norm")


def _similarity_report(live_server) -> int:
    from app.course import similarity_reports as reports

    a = live_server.app.state.assessments["hw1p1"]
    report_id = reports.request_report(live_server.db, a, None, threshold=0.0)
    reports.run_report(live_server.db, a, report_id)
    return report_id


@pytest.mark.parametrize("width", [390, 1280])
def test_ta_pages_fit_a_phone_and_name_their_marks(new_page, live_server, seeded, helpers, width):
    kind = "phone" if width == 390 else "desktop"
    page = new_page("tina", width=width, height=844)
    report_id = _similarity_report(live_server)
    pages = {"students": "/ta/students?assessment=hw1p1",
             "submissions": "/ta/submissions?assessment=hw1p1",
             "similarity": "/ta/assessments/hw1p1/similarity",
             "similarity-report": f"/ta/similarity/{report_id}"}
    for name, url in pages.items():
        page.goto(url)
        expect(page.locator("h1")).to_be_visible()
        _fits(page, name)
        if name in ("students", "submissions"):
            _marks_are_named(page, name)
        helpers.screenshot(page, f"fits-{name}-{kind}")
    page.goto(f"/ta/similarity/{report_id}")
    page.get_by_role("link", name="Side by side").first.click()
    expect(page.locator("pre.source").first).to_be_visible()
    _fits(page, "similarity pair")
    helpers.screenshot(page, f"fits-similarity-pair-{kind}")


@pytest.mark.parametrize("width", [390, 1280])
def test_a_students_pages_fit_a_phone(new_page, live_server, seeded, helpers, width):
    kind = "phone" if width == 390 else "desktop"
    page = new_page("bob", width=width, height=844)
    page.goto("/assessments/hw1p1")
    _fits(page, "assessment")
    _marks_are_named(page, "assessment")
    helpers.screenshot(page, f"fits-assessment-{kind}")
    page.goto(f"/submissions/{seeded['bob']}")
    _fits(page, "submission")

    page.goto("/profile")
    page.get_by_label("Token name").fill("phone")
    page.get_by_role("button", name="Create token").click()
    box = page.get_by_label("New token")
    expect(box).to_be_visible()
    _fits(page, "profile")
    inner = box.evaluate("el => { const p = el.parentElement, s = getComputedStyle(p);"
                         " return p.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); }")
    assert box.bounding_box()["width"] >= inner - 2, (box.bounding_box(), inner)   # the row's full width
    helpers.screenshot(page, f"fits-profile-token-{kind}")


@pytest.mark.parametrize("width", [390, 1280])
def test_docs_have_a_viewport_and_a_way_back(new_page, helpers, width):
    page = new_page(width=width, height=844)
    page.goto("/docs")
    viewport = page.locator('meta[name="viewport"]')
    expect(viewport).to_have_attribute("content", re.compile("width=device-width"))
    back = page.get_by_role("link", name=re.compile("Back to the grader"))
    expect(back).to_be_visible()
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    helpers.screenshot(page, f"docs-{'phone' if width == 390 else 'desktop'}")
    back.click()
    expect(page).to_have_url(re.compile(r"/login"))
