"""What students and TAs do in a real browser (Chromium via Playwright) against a real server."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect


def _upload(page, path) -> None:
    page.get_by_label(re.compile("Your handin archive")).set_input_files(str(path))
    page.get_by_role("button", name="Submit", exact=True).click()


def test_student_uploads_broken_and_correct_handins_and_watches_them_grade(new_page, live_server, handins,
                                                                           helpers):
    page = new_page("alice")
    page.get_by_role("link", name="Open and submit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("HW1P1: MyTorch")
    expect(page.get_by_text("10 MiB").first).to_be_visible()          # the size cap is stated

    # Hold the workers so the page is seen queued, then let them grade while we watch.
    live_server.gate.clear()
    _upload(page, handins["bad_linear"])
    expect(page.get_by_role("status")).to_contain_text("Submission received")
    newest = page.locator("#my-submissions tbody tr").first
    expect(newest.locator("[data-status]")).to_have_text("queued")
    helpers.screenshot(page, "assessment-queued-desktop")
    page.evaluate("window.__sameDocument = true")   # survives only if the page never reloads
    live_server.gate.set()
    expect(newest.locator("[data-status]")).to_have_text("graded")
    assert page.evaluate("window.__sameDocument === true")
    expect(newest).to_contain_text("50 / 100")

    # The submission page: section table, then the failing test's message, expected vs got.
    newest.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("submission #1")
    sections = page.locator("table.sections")
    expect(sections.get_by_role("row", name=re.compile("Linear Layer"))).to_contain_text("FAILED")
    expect(sections.get_by_role("row", name=re.compile("Batch Norm"))).to_contain_text("PASSED")
    failure = page.locator("article.failure", has=page.get_by_role("heading", name=re.compile("Linear Layer")))
    expect(failure).to_contain_text("Z = Linear.forward(A): values differ")
    pair = failure.locator(".side-by-side").first
    expect(pair.locator("figcaption")).to_have_text(["expected", "got"])
    expect(pair.locator("pre").first).to_contain_text("[[ 10.  -3. -16.]")
    font = pair.locator("pre").first.evaluate("el => getComputedStyle(el).fontFamily")
    assert "mono" in font.lower(), font
    boxes = [pair.locator("figure").nth(i).bounding_box() for i in range(2)]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 1 and boxes[1]["x"] > boxes[0]["x"]   # side by side
    expect(page.get_by_role("row", name=re.compile("Late penalty"))).to_contain_text("none")
    expect(page.get_by_role("row", name=re.compile("Early bonus"))).to_contain_text("not earned")
    expect(page.get_by_text("Grading started")).to_be_visible()
    helpers.screenshot(page, "submission-failing-desktop")
    failure.screenshot(path=str(helpers.screenshot_dir / "submission-failure-detail-desktop.png"))

    # The correct handin: full marks before the early deadline earns the bonus.
    page.get_by_role("link", name="Back to the assessment").click()
    _upload(page, handins["good"])
    newest = page.locator("#my-submissions tbody tr").first
    expect(newest.locator("[data-status]")).to_have_text("graded")
    expect(newest).to_contain_text("100 / 100")
    expect(page.locator("#counted-score")).to_contain_text("100 / 100 + 5 bonus")   # the bonus beside, not "105 / 100"
    page.get_by_role("link", name="Home").click()
    expect(page.locator("dl.facts")).to_contain_text("earned (+5)")
    expect(page.locator(".countdown").first).to_have_text(re.compile(r"\d+d \d\dh \d\dm \d\ds left"))
    expect(page.get_by_text(re.compile(r"\d\d:\d\d:\d\d E[SD]T")).first).to_be_visible()   # course time zone


def test_wrong_files_get_a_clear_message(new_page, handins):
    page = new_page("alice")
    page.goto("/assessments/hw1p1")
    rows_before = page.locator("#my-submissions tbody tr").count()

    # In the browser, before anything is sent.
    page.get_by_label(re.compile("Your handin archive")).set_input_files(str(handins["notes"]))
    error = page.locator("#upload-error")
    expect(error).to_contain_text("is not a tar archive")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(error).to_be_visible()
    assert page.url.endswith("/assessments/hw1p1")

    # Drag and drop onto the box goes through the same check.
    page.locator("[data-drop]").evaluate("""zone => {
        const dt = new DataTransfer();
        dt.items.add(new File(["hello"], "report.pdf", {type: "application/pdf"}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""")
    expect(error).to_contain_text("report.pdf")
    assert page.locator("#handin").evaluate("el => el.files[0].name") == "report.pdf"

    # Named like an archive but is not one: the server says so, and nothing is stored.
    _upload(page, handins["garbage"])
    expect(page.locator("#server-error")).to_contain_text("not a tar or zip archive")
    assert page.locator("#my-submissions tbody tr").count() == rows_before


def test_a_student_cannot_open_another_students_submission(new_page, seeded):
    page = new_page("bob")
    response = page.goto(f"/submissions/{seeded['carol']}")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert page.request.get(f"/api/v1/submissions/{seeded['carol']}/handin").status == 404
    assert page.request.get(f"/api/v1/submissions/{seeded['carol']}").status == 404
    # Their own is fine, and TA pages are not theirs.
    assert page.goto(f"/submissions/{seeded['bob']}").status == 200
    assert page.goto("/ta/assessments/hw1p1/scoreboard").status == 403
    assert page.request.get("/api/v1/assessments/hw1p1/gradebook.csv").status == 403


def test_student_scoreboard_shows_nicknames_and_highlights_own_row(new_page, seeded):
    page = new_page("bob")
    page.goto("/assessments/hw1p1/scoreboard")
    mine = page.locator("tr.me")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text("(you)")
    expect(mine).to_contain_text("90")
    body = page.locator("main").inner_text()
    for real in ("Carol Chen", "carol", "Bob Brown", "bob@example.edu"):
        assert real not in body


def test_ta_sorts_filters_exports_and_regrades(new_page, live_server, seeded, helpers):
    page = new_page("tina")
    page.on("dialog", lambda d: d.accept())
    page.goto("/ta/assessments/hw1p1/scoreboard")
    board = page.locator("#ta-board")
    expect(board.get_by_role("row", name=re.compile("Carol Chen"))).to_contain_text("105")

    def column(i: int) -> list[str]:
        return board.locator(f"tbody tr td:nth-child({i})").all_inner_texts()

    # Sort by total ascending (the board starts descending), then by name, then by a section.
    board.get_by_role("link", name=re.compile("^Total")).click()
    expect(board.locator("th[aria-sort]")).to_contain_text("Total")
    totals = [int(t) if t.strip().isdigit() else -1 for t in column(3)]
    assert totals == sorted(totals), totals
    board.get_by_role("link", name=re.compile("^Name")).click()
    expect(board.locator("th[aria-sort]")).to_contain_text("Name")
    names = column(1)
    assert names == sorted(names, key=str.lower, reverse=True), names
    board.get_by_role("link", name=re.compile("^SGD")).click()
    expect(board.locator("th[aria-sort]")).to_contain_text("SGD")
    sgd = column(3 + 7)   # Name, Username, Total, then the sections in order: SGD is the 7th
    values = [int(v) if v.strip().isdigit() else -1 for v in sgd]
    assert values == sorted(values, reverse=True), values

    # Filter by name.
    page.get_by_label("Filter by name").fill("bob")
    page.get_by_role("button", name="Filter").click()
    expect(board.locator("tbody tr")).to_have_count(1)
    expect(board.locator("tbody tr")).to_contain_text("Bob Brown")
    page.goto("/ta/assessments/hw1p1/scoreboard")

    # Per-section pass rates and the histogram.
    expect(page.get_by_role("row", name=re.compile("^SGD"))).to_contain_text(re.compile(r"\d+ / \d+"))
    expect(page.locator("svg.histogram rect")).not_to_have_count(0)
    expect(page.locator("svg.histogram title")).to_have_text("Histogram of counted totals")

    # CSV gradebook.
    with page.expect_download() as info:
        page.get_by_role("link", name="Export gradebook (CSV)").click()
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(Path(info.value.path()).read_text()))}
    assert rows["carol"]["total"] == "105" and rows["carol"]["early_bonus"] == "5"
    assert rows["bob"]["total"] == "90" and rows["bob"]["SGD"] == "0" and rows["bob"]["Linear Layer"] == "15"
    assert rows["bob"]["display_name"] == "Bob Brown"

    # Regrade all, with the workers held so the progress is seen, then released.
    page.goto("/ta/submissions?assessment=hw1p1")
    live_server.gate.clear()
    page.get_by_role("button", name="Regrade all submissions").click()
    progress = page.locator("#regrade-progress progress")
    expect(progress).to_be_visible()
    expect(page.locator("#regrade-progress")).to_contain_text(re.compile(r"Regrading: 0 of \d+ done"))
    helpers.screenshot(page, "ta-regrade-progress-desktop")
    live_server.gate.set()
    expect(page.get_by_text("No regrades waiting.")).to_be_visible()
    expect(page.locator("table.subs [data-status]").first).to_have_text("graded")
    expect(page.locator("table.subs [data-status='queued'], table.subs [data-status='running']")).to_have_count(0)

    # Regrade one from its submission page, which then shows the feedback and the handin link.
    page.goto(f"/submissions/{seeded['bob']}")
    expect(page.get_by_text("Bob Brown")).to_be_visible()
    with page.expect_download() as handin:
        page.get_by_role("link", name="Download the handin").click()
    assert Path(handin.value.path()).read_bytes()[257:262] == b"ustar"   # a tar file
    page.get_by_role("button", name="Regrade this submission").click()
    expect(page.locator("#sub-status [data-status]")).to_have_text(re.compile("graded"))
    expect(page.get_by_role("row", name=re.compile("^SGD"))).to_contain_text("FAILED")

    # Filters on the submissions list.
    page.goto("/ta/submissions?assessment=hw1p1")
    page.get_by_label("Student").fill("carol")
    page.get_by_label("Status").select_option("graded")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("table.subs tbody tr")).not_to_have_count(0)
    for text in page.locator("table.subs tbody tr td:nth-child(2)").all_inner_texts():
        assert "carol" in text
    page.get_by_label("Errors only").check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("table.subs tbody tr")).to_have_count(0)


def test_queue_health_page(new_page, seeded):
    page = new_page("tina")
    page.goto("/ta/queue")
    expect(page.get_by_role("heading", level=1)).to_have_text("Queue health")
    graded = int(page.locator("#q-graded").inner_text())
    assert graded >= 2
    expect(page.get_by_role("heading", name="Workers")).to_be_visible()
    expect(page.locator("main")).to_contain_text("alive")
    expect(page.locator("main")).to_contain_text("Average grading time")
    # what this server's workers really are (the live server runs one thread, see conftest)
    expect(page.locator("#q-server-workers")).to_contain_text("1 thread in the server's own process")


def test_profile_tokens_are_shown_once_and_revocable(new_page, live_server):
    page = new_page("alice")
    page.goto("/profile")
    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New token").input_value()
    assert token.startswith("gr_")
    auth = {"Authorization": f"Bearer {token}"}
    assert page.request.get("/api/v1/me", headers=auth).status == 200
    page.goto("/profile")
    assert token not in page.content()          # shown once
    row = page.get_by_role("row", name=re.compile("laptop"))
    row.get_by_role("button", name="Revoke token laptop").click()
    expect(page.get_by_role("row", name=re.compile("laptop"))).to_contain_text("revoked")
    assert page.request.get("/api/v1/me", headers=auth).status == 401

    # The script and its two lines.
    expect(page.locator("pre.code")).to_contain_text("create_tarball.sh")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download create_tarball.sh").click()
    assert Path(info.value.path()).read_text().startswith("#!/usr/bin/env bash")

    # Nickname, then seen on the public board.
    page.get_by_role("textbox", name="Nickname").fill("alice-the-great")
    page.get_by_role("button", name="Save nickname").click()
    expect(page.get_by_role("status")).to_have_text("Nickname saved.")
    page.get_by_role("textbox", name="Nickname").fill("no spaces allowed!")
    page.get_by_role("textbox", name="Nickname").evaluate("el => el.removeAttribute('pattern')")
    page.get_by_role("button", name="Save nickname").click()
    expect(page.get_by_role("alert")).to_contain_text("3 to 32 letters")


def test_forms_need_the_sessions_csrf_token(new_page):
    page = new_page("alice")
    assert page.request.post("/profile/tokens", form={"name": "x"}).status == 403
    assert page.request.post("/profile/tokens", form={"name": "x", "csrf_token": "wrong"}).status == 403
    assert page.request.post("/profile/nickname", form={"nickname": "hacked-nick"}).status == 403
    ta = new_page("tina")
    assert ta.request.post("/ta/assessments/hw1p1/regrade", form={}).status == 403
    assert ta.request.post("/ta/students/bob/role", form={"role": "ta"}).status == 403


def test_roster_import_activation_extension_and_roles(new_page, browser, live_server, tmp_path):
    page = new_page("tina")
    page.goto("/ta/students")
    roster = tmp_path / "roster.csv"
    roster.write_text("username,name,email\nerin,Erin Evans,erin@example.edu\n")
    page.get_by_label("Roster CSV").set_input_files(str(roster))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status")).to_contain_text("Imported 1 new student")
    link = page.locator("code.activation-link").first.inner_text()
    assert "/activate?token=" in link
    # post, redirect, get: the address is the Students page, and a reload neither imports again
    # nor shows the one-time links twice (issue 20 item 9)
    assert page.url.split("?")[0].endswith("/ta/students"), page.url
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator("code.activation-link")).to_have_count(0)

    # Extension for carol, then a role change for erin.
    row = page.locator("#user-carol")
    row.get_by_label("Days").fill("2")
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("carol now has an extension of 2 day(s)")
    # Roles are an admin's to change (issue 10: a TA acts on students only and makes nobody
    # staff), so a TA sees them without a control.
    row = page.locator("#user-erin")
    expect(row.get_by_label("Role of erin")).to_have_count(0)
    expect(row).to_contain_text("student")
    expect(page.locator("#user-tina").get_by_role("button", name="New activation link for tina")).to_have_count(0)

    # Erin activates from the link, which logs her in.
    erin = new_page()
    erin.goto(link)
    expect(erin.locator("#link-username")).to_have_text("erin")
    erin.get_by_label("New password").fill("erin-password-1")
    erin.get_by_label("The same password again").fill("erin-password-1")
    erin.get_by_role("button", name="Set password").click()
    expect(erin.get_by_role("status")).to_contain_text("logged in as erin")
    expect(erin.get_by_role("heading", level=1)).to_have_text("Assessments")
    # The link works once, and says so before anyone types a password.
    other = new_page()
    other.goto(link)
    expect(other.get_by_role("alert")).to_contain_text("already used")
    expect(other.get_by_label("New password")).to_have_count(0)

    # Log out.
    erin.get_by_role("button", name=re.compile("Log out")).click()
    expect(erin.get_by_role("heading", level=1)).to_have_text("Log in")
    assert erin.goto("/profile").url.split("?")[0].endswith("/login")
