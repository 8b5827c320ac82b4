"""TA grading tools in the browser (issue 20 items 11 to 14): a points adjustment on the submission
page, the versions and the way back to the list, the class's handins as one zip, the TA home, and
failures grouped by cause. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

WIDTHS = {"desktop": 1280, "phone": 390}


def _fits_phone(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"scrolls sideways by {overflow}px at phone width"


def _log_in(page, name: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(f"{name}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


@pytest.fixture(scope="module")
def ivy(live_server, handins) -> list[int]:
    """A student of this file's own with two graded versions (a wrong Linear, then a broken SGD)."""
    import httpx

    from app.auth import admin
    from app.auth.accounts import get_user

    with live_server.db.read_session() as s:
        if get_user(s, "ivy") is None:
            admin.add_user(live_server.db, "ivy", "student", "ivy-password", "Ivy Ito", "ivy@example.edu")
    ids = []
    with httpx.Client(base_url=live_server.url, timeout=300) as client:
        for kind in ("bad_linear", "bad_sgd"):
            r = client.post("/api/v1/assessments/hw1p1/submissions", params={"wait": 240},
                            headers={"Authorization": f"Bearer {live_server.token('ivy')}"},
                            files={"handin": ("handin.tar", handins[kind].read_bytes())})
            assert r.status_code == 200 and r.json()["status"] == "graded", r.text
            ids.append(r.json()["id"])
    return ids


def _tina(new_page, width: int):
    page = new_page(width=width)
    _log_in(page, "tina")
    return page


# ---------------------------------------------------------------------------------------------
# 11. a points adjustment, the student's versions, back to the list

def test_a_ta_adjusts_a_score_and_the_student_sees_it_in_the_total(new_page, live_server, helpers, ivy):
    first, latest = ivy
    page = _tina(new_page, 1280)
    page.goto("/ta/submissions?assessment=hw1p1&student=ivy")
    page.get_by_role("link", name=str(latest), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"submission #{2}")
    versions = page.get_by_role("navigation", name="This student's versions")
    expect(versions.get_by_role("link", name="#1")).to_have_attribute("href", re.compile(f"/submissions/{first}"))

    page.get_by_label("Points").fill("4")
    page.get_by_label("Reason (staff only)").fill("SGD: only the momentum update was off")
    page.get_by_label("Comment the student sees").fill("Partial credit for SGD: plain steps were right.")
    page.get_by_role("button", name="Save the adjustment").click()
    expect(page.get_by_role("status").filter(has_text="Adjustment of +4 point(s) saved.")).to_be_visible()
    history = page.get_by_role("table", name=re.compile("Changes, newest first"))
    expect(history).to_contain_text("tina")
    expect(history).to_contain_text("SGD: only the momentum update was off")
    expect(page.locator("#adjustment-line")).to_contain_text("+4")
    helpers.screenshot(page, "ta-adjustment-desktop")

    page.get_by_role("link", name="← Back to the list").click()
    expect(page).to_have_url(re.compile(r"/ta/submissions\?assessment=hw1p1&student=ivy"))

    phone = _tina(new_page, 390)
    phone.goto(f"/submissions/{latest}#adjust")
    expect(phone.get_by_role("heading", name="Adjust the score")).to_be_visible()
    helpers.screenshot(phone, "ta-adjustment-phone")
    _fits_phone(phone)

    for kind, width in WIDTHS.items():
        student = new_page(width=width)
        _log_in(student, "ivy")
        student.goto(f"/submissions/{latest}")
        line = student.locator("#adjustment-line")
        expect(line).to_contain_text("Partial credit for SGD: plain steps were right.")
        expect(line).to_contain_text("+4")
        expect(student.get_by_text("SGD: only the momentum update was off")).to_have_count(0)
        total = student.locator("tr.total td")
        score = int(student.locator("#result-summary strong").inner_text().split("/")[0])
        expect(total).to_have_text(str(score + 4))    # on time, no early bonus earned: raw + 4
        expect(student.get_by_role("heading", name="Adjust the score")).to_have_count(0)
        helpers.screenshot(student, f"student-adjusted-score-{kind}")
        if kind == "phone":
            _fits_phone(student)


# ---------------------------------------------------------------------------------------------
# 12. every counted handin as one zip

@pytest.mark.parametrize("kind", WIDTHS)
def test_a_ta_downloads_every_counted_handin_as_one_zip(new_page, live_server, helpers, ivy, tmp_path, kind):
    import io
    import zipfile

    page = _tina(new_page, WIDTHS[kind])
    page.goto("/")
    page.get_by_role("region", name="HW1P1: MyTorch").get_by_role("link", name="Download handins").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Handins: HW1P1: MyTorch")
    count = int(page.locator("#handins-summary strong").inner_text())
    assert count >= 1
    expect(page.get_by_role("table").get_by_role("row", name=re.compile("Ivy Ito"))).to_contain_text("#2")
    helpers.screenshot(page, f"ta-handins-{kind}")
    if kind == "phone":
        _fits_phone(page)
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile(r"Download \d+ handins? as one zip")).click()
    download = info.value
    assert download.suggested_filename == f"hw1p1-handins-{count}-students.zip"
    z = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))
    assert "ivy/mytorch/optim/sgd.py" in z.namelist() and "manifest.csv" in z.namelist()
    assert len({n.split("/")[0] for n in z.namelist()} - {"manifest.csv"}) == count

    student = new_page(width=WIDTHS[kind])
    _log_in(student, "ivy")
    assert student.request.get("/ta/assessments/hw1p1/handins.zip").status == 403


# ---------------------------------------------------------------------------------------------
# 13. the TA home and the queue

@pytest.mark.parametrize("kind", WIDTHS)
def test_the_ta_home_shows_each_assessment_and_the_queue(new_page, live_server, helpers, ivy, kind):
    page = _tina(new_page, WIDTHS[kind])
    card = page.get_by_role("region", name="HW1P1: MyTorch")
    expect(card.locator("#submitted-hw1p1")).to_contain_text(re.compile(r"\d+ of \d+"))
    expect(card.locator("#mean-hw1p1")).to_contain_text("/ 100")
    expect(page.get_by_role("region", name="Grading queue")).to_be_visible()
    helpers.screenshot(page, f"ta-home-{kind}")
    if kind == "phone":
        _fits_phone(page)
    card.get_by_role("link", name=re.compile(r"\d+ of \d+")).click()   # failing something -> failures
    expect(page.get_by_role("heading", level=1)).to_contain_text("Failures across the class")

    page.goto("/ta/queue")
    expect(page.locator("section", has=page.get_by_role("heading", name="Workers"))).not_to_contain_text("reused")
    helpers.screenshot(page, f"ta-queue-{kind}")


# ---------------------------------------------------------------------------------------------
# 14. failures grouped by cause, a view per section, every student

@pytest.fixture(scope="module")
def syntax_errors(live_server, handins) -> list[str]:
    """Two students whose linear.py has the same syntax error on line 3."""
    import httpx
    from support import make_tar, reference_files

    from app.auth import admin
    from app.auth.accounts import get_user

    files = reference_files()
    lines = files["mytorch/nn/linear.py"].split(b"\n")
    lines.insert(2, b"def broken(:")
    files["mytorch/nn/linear.py"] = b"\n".join(lines)
    names = ["jon", "kim"]
    with httpx.Client(base_url=live_server.url, timeout=300) as client:
        for name in names:
            with live_server.db.read_session() as s:
                if get_user(s, name) is None:
                    admin.add_user(live_server.db, name, "student", f"{name}-password", name.title())
            r = client.post("/api/v1/assessments/hw1p1/submissions", params={"wait": 240},
                            headers={"Authorization": f"Bearer {live_server.token(name)}"},
                            files={"handin": ("handin.tar", make_tar(files))})
            assert r.status_code == 200 and r.json()["status"] == "graded", r.text
    return names


@pytest.mark.parametrize("kind", WIDTHS)
def test_failures_are_grouped_by_cause_with_a_view_per_section(new_page, live_server, helpers, ivy, syntax_errors,
                                                               kind):
    page = _tina(new_page, WIDTHS[kind])
    page.goto("/ta/assessments/hw1p1/failures")
    groups = page.locator("ol.failure-groups > li")
    imports = groups.filter(has_text="mytorch/nn/linear.py has a syntax error on line 3")
    expect(imports).to_have_count(1)
    expect(imports.locator("h2")).to_contain_text("2 students")
    for name in syntax_errors:
        expect(imports.get_by_role("link", name=name.title())).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Not run")
    helpers.screenshot(page, f"ta-failures-by-cause-{kind}")
    if kind == "phone":
        _fits_phone(page)

    page.get_by_role("navigation", name="Group by").get_by_role("link", name=re.compile(r"^SGD \(\d+\)")).click()
    expect(page.get_by_role("navigation", name="Group by").locator("[aria-current=page]")).to_contain_text("SGD")
    sgd = page.locator("ol.failure-groups > li").filter(has_text="handout case: plain SGD, two steps")
    expect(sgd.get_by_role("link", name="Ivy Ito")).to_be_visible()
    helpers.screenshot(page, f"ta-failures-section-{kind}")
    if kind == "phone":
        _fits_phone(page)
