"""Accounts in the browser (issue 20 item 10): a TA makes an activation link (shown once, after a
redirect), the student opens it, sees their username, sets a password and is logged in; the same
link opened again says it was used and offers the login; a TA makes a password reset link and
downloads the roster's activation links as CSV. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

WIDTHS = {"desktop": 1280, "phone": 390}


def _fits_phone(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"scrolls sideways by {overflow}px at phone width"


def _shown_link(page, kind: str) -> str:
    links = page.locator("code.activation-link")
    expect(links).to_have_count(1)
    return links.first.inner_text().strip()


@pytest.mark.parametrize("kind", WIDTHS)
def test_activation_reset_and_the_csv_from_the_students_page(new_page, live_server, helpers, kind):
    from app.auth import admin
    name, waiting = f"pat-{kind}", f"quin-{kind}"
    admin.add_user(live_server.db, name, "student", None, f"Pat {kind.title()}", f"{name}@example.edu")
    admin.add_user(live_server.db, waiting, "student", None, f"Quin {kind.title()}", f"{waiting}@example.edu")
    width = WIDTHS[kind]

    ta = new_page("tina", width=width)
    ta.goto(f"/ta/students?q={name}")
    ta.get_by_role("button", name=f"New activation link for {name}").click()
    expect(ta.get_by_role("heading", name="Activation links (shown once)")).to_be_visible()
    assert "shown=" in ta.url   # a redirect after the POST: a reload is a GET
    link = _shown_link(ta, kind)
    helpers.screenshot(ta, f"ta-students-activation-link-{kind}")
    ta.reload()
    expect(ta.locator("code.activation-link")).to_have_count(0)   # shown once

    student = new_page(width=width)
    student.goto(link)
    expect(student.get_by_role("heading", level=1)).to_have_text("Activate your account")
    expect(student.locator("#link-username")).to_have_text(name)
    helpers.screenshot(student, f"activate-{kind}")
    if kind == "phone":
        _fits_phone(student)
    student.get_by_label("New password", exact=True).fill("pats-new-password")
    student.get_by_label("The same password again").fill("pats-new-password")
    student.get_by_role("button", name="Set password and log in").click()
    expect(student.get_by_role("status")).to_have_text(f"Your password is set and you are logged in as {name}.")
    expect(student.get_by_role("heading", level=1, name="Assessments")).to_be_visible()
    helpers.screenshot(student, f"activate-logged-in-{kind}")

    again = new_page(width=width)
    response = again.goto(link)
    assert response.status == 410
    expect(again.get_by_role("alert")).to_contain_text("already used")
    helpers.screenshot(again, f"activate-used-{kind}")
    again.get_by_role("link", name=f"Log in as {name}").click()
    expect(again.get_by_label("Username")).to_have_value(name)

    response = again.goto("/activate?token=not-a-real-link")
    assert response.status == 404
    expect(again.get_by_role("alert")).to_contain_text("not valid")
    expect(again.get_by_role("listitem").filter(has_text="Ask your TA")).to_be_visible()
    helpers.screenshot(again, f"activate-invalid-{kind}")
    if kind == "phone":
        _fits_phone(again)

    # the student forgot the password: the TA makes a reset link and copies it to them
    ta.goto(f"/ta/students?q={name}")
    ta.get_by_role("button", name=f"Password reset link for {name}").click()
    expect(ta.get_by_role("heading", name="Password reset link (shown once)")).to_be_visible()
    reset = _shown_link(ta, kind)
    assert "/reset-password?token=" in reset
    helpers.screenshot(ta, f"ta-students-reset-link-{kind}")
    forgetful = new_page(width=width)
    forgetful.goto(reset)
    expect(forgetful.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    expect(forgetful.locator("#link-username")).to_have_text(name)
    helpers.screenshot(forgetful, f"reset-password-{kind}")
    forgetful.get_by_label("New password", exact=True).fill("pats-newer-password")
    forgetful.get_by_label("The same password again").fill("pats-newer-password")
    forgetful.get_by_role("button", name="Set password and log in").click()
    expect(forgetful.get_by_role("status")).to_contain_text(f"logged in as {name}")

    # the roster's links as CSV: only accounts not yet activated, each a working link
    ta.goto("/ta/students")
    with ta.expect_download() as download:
        ta.get_by_role("button", name="Download activation links (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    names = [r["username"] for r in rows]
    assert waiting in names and name not in names and "alice" not in names
    row = next(r for r in rows if r["username"] == waiting)
    assert row["email"] == f"{waiting}@example.edu" and re.search(r"/activate\?token=[\w-]+$", row["activation_link"])
    expect(ta.get_by_role("heading", level=1)).to_have_text("Students and staff")   # the page stayed put
    fresh = new_page(width=width)
    fresh.goto(row["activation_link"])
    expect(fresh.locator("#link-username")).to_have_text(waiting)
