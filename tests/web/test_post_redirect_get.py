"""Post, redirect, get in the browser (issue 20 item 9): a new API token, a nickname and a refused
upload each land on a GET page that shows the result once; a reload shows the plain page and
posts nothing again; a POST-only address opened again is its page. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

WIDTHS = {"desktop": 1280, "phone": 390}


def _fits_phone(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"scrolls sideways by {overflow}px at phone width"


@pytest.mark.parametrize("kind", WIDTHS)
def test_token_nickname_and_refused_upload_redirect_and_reload_safely(new_page, live_server, handins, helpers,
                                                                      kind):
    from app.auth import admin
    from app.auth.accounts import get_user, tokens
    name = f"rhea-{kind}"
    admin.add_user(live_server.db, name, "student", f"{name}-password", f"Rhea {kind.title()}")
    page = new_page(width=WIDTHS[kind])
    page.goto("/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(f"{name}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name="Assessments")).to_be_visible()

    # a new API token: shown once on the profile the POST redirected to
    page.goto("/profile")
    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("New token")).to_have_value(re.compile(r"^gr_"))
    assert re.search(r"/profile\?shown=[\w-]+#tokens-h$", page.url), page.url
    helpers.screenshot(page, f"profile-new-token-{kind}")
    if kind == "phone":
        _fits_phone(page)
    page.reload()   # a GET: no resend prompt, no second token, the token not shown again
    expect(page.get_by_role("heading", level=1)).to_have_text("Profile")
    expect(page.get_by_label("New token")).to_have_count(0)
    with live_server.db.read_session() as s:
        assert [t.name for t in tokens(s, get_user(s, name).id)] == ["laptop"]

    # the nickname
    page.get_by_role("textbox", name="Nickname").fill(f"rhea-the-{kind}")
    page.get_by_role("button", name="Save nickname").click()
    expect(page.get_by_role("status")).to_have_text("Nickname saved.")
    assert "/profile?shown=" in page.url
    helpers.screenshot(page, f"profile-nickname-saved-{kind}")
    page.reload()
    expect(page.get_by_role("status")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Nickname")).to_have_value(f"rhea-the-{kind}")

    # a refused upload: back on the assessment page, which says why once
    page.goto("/assessments/hw1p1")
    page.get_by_label(re.compile("Your handin archive")).set_input_files(str(handins["garbage"]))
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#server-error")).to_contain_text("not a tar or zip archive")
    assert re.search(r"/assessments/hw1p1\?shown=[\w-]+#server-error$", page.url), page.url
    helpers.screenshot(page, f"assessment-upload-refused-{kind}")
    page.reload()
    expect(page.locator("#server-error")).to_have_count(0)

    # POST-only addresses opened again (history, a bookmark): their pages
    for address, heading in (("/profile/tokens", "Profile"), ("/profile/nickname", "Profile"),
                             ("/assessments/hw1p1/submit", None)):
        response = page.goto(address)
        assert response.status == 200, address
        if heading:
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)


@pytest.mark.parametrize("kind", WIDTHS)
def test_a_refused_similarity_archive_lands_on_the_similarity_page(new_page, handins, helpers, kind):
    page = new_page("tina", width=WIDTHS[kind])
    page.goto("/ta/assessments/hw1p1/similarity")
    page.get_by_label("Source").fill("F24")
    page.get_by_label("Handins (tar or zip)").set_input_files(str(handins["garbage"]))
    page.get_by_role("button", name="Add to the archive").click()
    expect(page.locator("#similarity-error")).to_contain_text("could not be read")
    assert re.search(r"/ta/assessments/hw1p1/similarity\?shown=[\w-]+$", page.url), page.url
    helpers.screenshot(page, f"ta-similarity-archive-refused-{kind}")
    page.reload()   # a GET: the archive is not sent again and the reason is not repeated
    expect(page.locator("#similarity-error")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Similarity")
