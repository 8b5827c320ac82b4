"""Dates and labels true for each student (issue 20 item 7): the rules are a short list written
with the student's own (extended) dates; an assessment without an early bonus never shows an
"early bonus window", one without a late penalty never "0% taken off"; the assessment page lists
its sections and points; Home shows the assessments taking uploads first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
EXTENSION = timedelta(days=4)


@pytest.fixture
def more_assessments(live_server):
    """Three assessments beside the session's hw1p1, for this test only: one open without an
    early bonus or a late penalty, one not yet open, one closed."""
    from app.course.assessments import Assessment

    now = datetime.now(UTC).replace(microsecond=0)
    base = live_server.app.state.assessments["hw1p1"].model_dump()
    for key in ("early", "early_bonus", "late_penalty_percent_per_day"):
        base.pop(key)

    def make(slug: str, title: str, release: float, due: float, last: float) -> Assessment:
        return Assessment.model_validate({**base, "slug": slug, "title": title,
                                          "release": now + timedelta(days=release),
                                          "due": now + timedelta(days=due),
                                          "last_accepted": now + timedelta(days=last)})
    added = {a.slug: a for a in (make("plain", "Plain: no bonus, no penalty", -1, 2, 3),
                                 make("later", "Later: not yet open", 3, 9, 10),
                                 make("old", "Old: closed", -20, -10, -8))}
    live_server.app.state.assessments.update(added)
    try:
        yield added
    finally:
        for slug in added:
            live_server.app.state.assessments.pop(slug, None)


def _student_with_an_extension(live_server, name: str) -> None:
    from sqlalchemy import select

    from app.auth import admin
    from app.course import extensions
    from app.store.models import User

    admin.add_user(live_server.db, name, "student", f"{name}-password", name.title(), f"{name}@example.edu")
    with live_server.db.read_session() as s:
        tina = s.scalar(select(User).where(User.username == "tina"))
    extensions.set_extension(live_server.db, "plain", name, int(EXTENSION.total_seconds()), tina)


@pytest.mark.parametrize("kind", SIZES)
def test_rules_phase_and_order_follow_the_students_own_dates(new_page, live_server, more_assessments,
                                                             helpers, kind):
    from app.web.common import local_time

    name = f"xena-{kind}"
    _student_with_an_extension(live_server, name)
    width, height = SIZES[kind]
    page = new_page(width=width, height=height)
    page.goto("/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(f"{name}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name="Assessments")).to_be_visible()

    # Home: the two taking uploads first, by this student's due dates (plain's moved past hw1p1's
    # by the extension), then the one not yet open, then the closed one.
    titles = page.locator("main h2").all_inner_texts()
    assert titles == ["HW1P1: MyTorch", "Plain: no bonus, no penalty", "Later: not yet open", "Old: closed"], titles
    plain_card = page.locator("section.card", has=page.get_by_role("heading", name="Plain: no bonus, no penalty"))
    expect(plain_card.locator(".badge.phase")).to_have_text("open")
    hw1p1_card = page.locator("section.card", has=page.get_by_role("heading", name="HW1P1: MyTorch"))
    expect(hw1p1_card.locator(".badge.phase")).to_have_text("open (early bonus window)")
    old_card = page.locator("section.card", has=page.get_by_role("heading", name="Old: closed"))
    expect(old_card.get_by_role("link", name="Open", exact=True)).to_be_visible()   # no "and submit"
    helpers.screenshot(page, f"home-open-first-{kind}")

    page.goto("/assessments/plain")
    plain = more_assessments["plain"]
    due, last = plain.due + EXTENSION, plain.last_accepted + EXTENSION
    rules = page.locator("ul#rules > li")
    texts = rules.all_inner_texts()
    assert 4 <= len(texts) <= 7, texts
    text = " ".join(texts)
    assert f"Due {local_time(due, plain.tz)}." in text, text
    assert f"accepted without penalty until {local_time(last, plain.tz)}" in text, text
    assert local_time(plain.due, plain.tz) not in text   # the class's dates are not this student's
    assert "bonus" not in text.lower() and "0%" not in text and "taken off" not in text, text
    expect(page.locator(".badge.phase")).to_have_text("open")
    points = page.locator("#section-points > li").all_inner_texts()
    assert points[:2] == ["Linear Layer 15", "Activation 10"] and points[-1] == "Total 100", points
    assert len(points) == 9, points
    helpers.screenshot(page, f"assessment-rules-and-points-{kind}")

    # The assessment with a bonus and a penalty still says both, as a list.
    page.goto("/assessments/hw1p1")
    text = " ".join(page.locator("ul#rules > li").all_inner_texts())
    assert "Early bonus: +5" in text and "10% of the maximum score" in text, text
