"""HW1P1 Bonus as a second assessment of the running service: a correct bonus handin scores 20
through the API and through the page, each assessment tells a handin built for the other one
what went wrong, and the served create_tarball.sh builds the right archive."""

from __future__ import annotations

import re

import pytest
from support import make_tar, reference_files

from .conftest import Service, _iso, write_assessment

BONUS_LAYOUT = "mytorch/ (models/ inside it or beside it)"


@pytest.fixture
def bonus_service(settings):
    write_assessment(settings.assessments_dir, "bonus", _iso(-1), _iso(5), _iso(7), suite="hw1p1_bonus")
    svc = Service(settings)
    yield svc
    svc.client.close()
    svc.db.dispose()


def test_a_correct_bonus_handin_scores_20_through_the_api(bonus_service, bonus_tar):
    r = bonus_service.submit("alice", "bonus", bonus_tar)
    assert r.status_code == 202, r.text
    bonus_service.drain()
    view = bonus_service.get("alice", r.json()["url"]).json()
    assert view["status"] == "graded" and view["score"] == 20 == view["max_score"], view
    assert [(s["name"], s["score"], s["max_score"]) for s in view["sections"]] == [
        ("Adam", 5, 5), ("AdamW", 5, 5), ("Dropout", 10, 10)]
    listed = {a["slug"]: a for a in bonus_service.get("alice", "/api/v1/assessments").json()}
    assert listed["bonus"]["max_score"] == 20 and listed["bonus"]["sections"] == {"Adam": 5, "AdamW": 5, "Dropout": 10}


def test_a_correct_bonus_handin_scores_20_through_the_page(bonus_service, bonus_tar):
    c = bonus_service.client
    csrf = c.post("/api/v1/login", json={"username": "bob", "password": "bob-password"}).json()["csrf_token"]
    page = c.get("/assessments/bonus")
    assert page.status_code == 200 and BONUS_LAYOUT in page.text
    assert 'href="/handout/create_tarball.sh?assessment=bonus"' in page.text
    r = c.post("/assessments/bonus/submit", data={"csrf_token": csrf},
               files={"handin": ("handin.tar", bonus_tar)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    sub_id = int(re.search(r"submitted=(\d+)", r.headers["location"]).group(1))
    bonus_service.drain()
    html = c.get(f"/submissions/{sub_id}").text
    assert re.search(r"20\s*/\s*20", html), html[:2000]
    for section in ("Adam", "AdamW", "Dropout"):
        assert section in html


def test_each_assessment_names_the_other_ones_layout(bonus_service, bonus_tar, good_tar):
    r = bonus_service.submit("alice", "bonus", good_tar)
    assert r.status_code == 422 and r.json()["error"] == "layout"
    assert "none of the bonus files" in r.json()["message"] and "is it your HW1P1 handin?" in r.json()["message"]
    r = bonus_service.submit("alice", "open", bonus_tar)
    assert r.status_code == 422 and r.json()["error"] == "layout"
    assert "models/ inside mytorch/ (the bonus assignment's layout)" in r.json()["message"]


def test_the_served_script_builds_each_assessments_archive(bonus_service):
    bonus = bonus_service.client.get("/handout/create_tarball.sh", params={"assessment": "bonus"}).text
    hw1p1 = bonus_service.client.get("/handout/create_tarball.sh", params={"assessment": "open"}).text
    assert "-cf handin.tar mytorch\n" in bonus and "[ -d mytorch ] ||" in bonus and "[ -d models ]" not in bonus
    assert "-cf handin.tar models mytorch\n" in hw1p1 and "[ -d models ] ||" in hw1p1 and "[ -d mytorch ] ||" in hw1p1
    assert bonus_service.client.get("/handout/create_tarball.sh", params={"assessment": "nope"}).status_code == 404


def test_demo_mode_adds_a_bonus_demo_copy(settings):
    from app.main import load_assessments

    write_assessment(settings.assessments_dir, "bonus", _iso(-1), _iso(5), _iso(7), suite="hw1p1_bonus")
    found = load_assessments(settings.model_copy(update={"demo": True}))
    assert found["bonus-demo"].suite == "hw1p1_bonus" and found["bonus-demo"].max_score == 20


def test_the_course_files_define_both_assessments():
    from app.course.assessments import load_dir

    from .conftest import REPO

    found = load_dir(REPO / "assessments")
    assert found["hw1p1"].max_score == 100 and found["hw1p1_bonus"].max_score == 20
    assert found["hw1p1_bonus"].suite == "hw1p1_bonus"


def bonus_files() -> dict[str, bytes]:
    """A bonus handin: HW1P1's mytorch/ with models/ inside it, and the bonus reference's files."""
    from support import REPO

    files = {}
    for name, data in reference_files().items():
        files[name if name.startswith("mytorch/") else "mytorch/" + name] = data
    bonus = REPO / "mytorch_reference_bonus"
    for path in sorted((bonus / "mytorch").rglob("*.py")):
        if path.name != "__init__.py":
            files[str(path.relative_to(bonus))] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def bonus_tar() -> bytes:
    return make_tar(bonus_files())
