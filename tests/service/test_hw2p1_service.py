"""HW2P1 as a third assessment of the running service, set up by a TOML alone: a correct handin (in
the handout's layout, files importing each other by bare name) scores 100 through the API and
through the page, HW1P1 and HW2P1 tell a handin built for the other one what went wrong, the served
create_tarball.sh builds models/ and mytorch/, and the course files and the demo course carry it."""

from __future__ import annotations

import re

import pytest
from support import REPO, make_tar, reference_files

from .conftest import Service, _iso, write_assessment

SECTIONS = ["Resampling 1d", "Resampling 2d", "Conv1d_stride1", "Conv1d", "Conv2d_stride1", "Conv2d",
            "convTranspose1d", "convTranspose2d", "MaxPool2d_stride1", "MaxPool2d", "MeanPool2d_stride1",
            "MeanPool2d", "CNN as Simple Scanning MLP", "CNN as Distributed Scanning MLP", "Build a CNN Model"]


def hw2p1_files() -> dict[str, bytes]:
    """The HW2P1 reference as the handout lays it out: no __init__.py, `from resampling import ...`."""
    root = REPO / "mytorch_reference_hw2"
    files = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("models", "mytorch") and path.name != "__init__.py":
            text = re.sub(r"from mytorch\.(?:nn\.)?(\w+) import", r"from \1 import", path.read_text())
            files[rel.as_posix()] = text.encode()
    return files


@pytest.fixture(scope="module")
def hw2p1_tar() -> bytes:
    return make_tar(hw2p1_files())


@pytest.fixture
def hw2_service(settings):
    write_assessment(settings.assessments_dir, "hw2", _iso(-1), _iso(5), _iso(7), suite="hw2p1")
    svc = Service(settings)
    yield svc
    svc.client.close()
    svc.db.dispose()


def test_a_correct_hw2p1_handin_scores_100_through_the_api(hw2_service, hw2p1_tar):
    r = hw2_service.submit("alice", "hw2", hw2p1_tar)
    assert r.status_code == 202, r.text
    hw2_service.drain()
    view = hw2_service.get("alice", r.json()["url"]).json()
    assert view["status"] == "graded" and view["score"] == 100 == view["max_score"], view
    assert [s["name"] for s in view["sections"]] == SECTIONS and all(s["passed"] for s in view["sections"])
    listed = {a["slug"]: a for a in hw2_service.get("alice", "/api/v1/assessments").json()}
    assert listed["hw2"]["max_score"] == 100 and list(listed["hw2"]["sections"]) == SECTIONS


def test_a_correct_hw2p1_handin_scores_100_through_the_page(hw2_service, hw2p1_tar):
    c = hw2_service.client
    csrf = c.post("/api/v1/login", json={"username": "bob", "password": "bob-password"}).json()["csrf_token"]
    page = c.get("/assessments/hw2")
    assert page.status_code == 200
    assert 'href="/handout/create_tarball.sh?assessment=hw2"' in page.text
    r = c.post("/assessments/hw2/submit", data={"csrf_token": csrf},
               files={"handin": ("handin.tar", hw2p1_tar)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    sub_id = int(re.search(r"submitted=(\d+)", r.headers["location"]).group(1))
    hw2_service.drain()
    html = c.get(f"/submissions/{sub_id}").text
    assert re.search(r"100\s*/\s*100", html), html[:2000]
    for section in SECTIONS:
        assert section in html


def test_hw1p1_and_hw2p1_each_name_the_others_handin(hw2_service, hw2p1_tar):
    r = hw2_service.submit("alice", "hw2", make_tar(reference_files()))
    assert r.status_code == 422 and r.json()["error"] == "layout"
    assert "it looks built for HW1P1" in r.json()["message"]
    r = hw2_service.submit("alice", "open", hw2p1_tar)
    assert r.status_code == 422 and r.json()["error"] == "layout"
    assert "it looks built for HW2P1" in r.json()["message"]


def test_the_served_script_builds_the_hw2p1_archive(hw2_service):
    script = hw2_service.client.get("/handout/create_tarball.sh", params={"assessment": "hw2"}).text
    assert "-cf handin.tar models mytorch\n" in script and "DEFAULT_SLUG=hw2\n" in script


def test_the_course_files_and_the_demo_course_carry_hw2p1(settings):
    from app.course.assessments import load_dir
    from app.main import load_assessments

    found = load_dir(REPO / "assessments")
    assert found["hw2p1"].suite == "hw2p1" and found["hw2p1"].max_score == 100
    write_assessment(settings.assessments_dir, "hw2", _iso(-1), _iso(5), _iso(7), suite="hw2p1")
    demo = load_assessments(settings.model_copy(update={"demo": True}))
    assert demo["hw2-demo"].suite == "hw2p1" and demo["hw2-demo"].max_score == 100
