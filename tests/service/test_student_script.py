"""The served create_tarball.sh checks the folder before it builds (another assignment's layout,
missing graded files), and the upload reply with ?wait: 200 once graded, a one-line summary, an
absolute page_url, and passing tests' checks only when asked (issue 20 item 2)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest
from support import REFERENCE, REPO, make_tar, reference_files

from .conftest import Service, _iso, write_assessment
from .test_hw2p1_service import hw2p1_files
from .test_processes import demo_server  # noqa: F401 - a fixture: `grader serve --demo` as the README runs it


@pytest.fixture
def three_assessments(settings):
    write_assessment(settings.assessments_dir, "bonus", _iso(-1), _iso(5), _iso(7), suite="hw1p1_bonus")
    write_assessment(settings.assessments_dir, "hw2", _iso(-1), _iso(5), _iso(7), suite="hw2p1")
    svc = Service(settings)
    yield svc
    svc.client.close()
    svc.db.dispose()


def _hw1p1_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "HW1P1"
    for name in ("models", "mytorch"):
        shutil.copytree(REFERENCE / name, folder / name)
    return folder


def _run(svc: Service, slug: str, folder: Path) -> subprocess.CompletedProcess:
    (folder / "create_tarball.sh").write_text(svc.client.get("/handout/create_tarball.sh",
                                                             params={"assessment": slug}).text)
    return subprocess.run(["bash", "create_tarball.sh", "--no-submit"], cwd=folder, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_bonus_script_run_in_an_hw1p1_folder_stops_before_building(three_assessments, tmp_path):
    folder = _hw1p1_folder(tmp_path)
    run = _run(three_assessments, "bonus", folder)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "none of the bonus files" in run.stderr and "Nothing was built or submitted." in run.stderr
    assert not (folder / "handin.tar").exists()


def test_the_hw2p1_script_run_in_an_hw1p1_folder_stops_before_building(three_assessments, tmp_path):
    folder = _hw1p1_folder(tmp_path)
    run = _run(three_assessments, "hw2", folder)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "it looks built for HW1P1" in run.stderr, run.stderr
    assert "mytorch/nn/Conv1d.py" in run.stderr   # and the graded files it lacks, listed once
    assert not (folder / "handin.tar").exists()


def test_the_hw1p1_script_in_a_bonus_folder_says_models_is_misplaced(three_assessments, tmp_path):
    folder = tmp_path / "bonus"
    shutil.copytree(REFERENCE / "mytorch", folder / "mytorch")
    shutil.copytree(REFERENCE / "models", folder / "mytorch" / "models")
    run = _run(three_assessments, "open", folder)
    assert run.returncode == 1 and "models/ inside mytorch/" in run.stderr, run.stderr
    assert not (folder / "handin.tar").exists()


def test_the_hw1p1_script_lists_missing_graded_files(three_assessments, tmp_path):
    folder = _hw1p1_folder(tmp_path)
    (folder / "mytorch" / "nn" / "batchnorm.py").unlink()
    (folder / "models" / "mlp.py").unlink()
    run = _run(three_assessments, "open", folder)
    assert run.returncode == 1
    assert "missing graded file(s): models/mlp.py mytorch/nn/batchnorm.py" in run.stderr, run.stderr
    assert not (folder / "handin.tar").exists()


def test_the_hw1p1_script_builds_from_a_complete_folder(three_assessments, tmp_path):
    folder = _hw1p1_folder(tmp_path)
    run = _run(three_assessments, "open", folder)
    assert run.returncode == 0, run.stderr
    with tarfile.open(folder / "handin.tar") as tar:
        assert {"models/mlp.py", "mytorch/nn/linear.py", "mytorch/optim/sgd.py"} <= set(tar.getnames())


def test_the_bonus_script_builds_from_a_bonus_folder(three_assessments, tmp_path):
    folder = tmp_path / "bonus"
    shutil.copytree(REPO / "mytorch_reference_bonus" / "mytorch", folder / "mytorch")
    run = _run(three_assessments, "bonus", folder)
    assert run.returncode == 0, run.stderr
    assert (folder / "handin.tar").exists()


def test_the_hw2p1_script_builds_from_an_hw2p1_folder(three_assessments, tmp_path):
    folder = tmp_path / "HW2P1"
    for name, data in hw2p1_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    run = _run(three_assessments, "hw2", folder)
    assert run.returncode == 0, run.stderr
    assert (folder / "handin.tar").exists()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the student's script needs curl")
def test_the_script_prints_a_syntax_errors_file_and_line_and_a_summary(demo_server, tmp_path):  # noqa: F811
    base, creds = demo_server
    folder = _hw1p1_folder(tmp_path)
    linear = folder / "mytorch" / "nn" / "linear.py"
    lines = linear.read_text().splitlines()
    broken = next(i for i, line in enumerate(lines) if line.strip().startswith("def forward"))
    lines[broken] = lines[broken].rstrip(":")   # def forward(self, A)   <- no colon
    linear.write_text("\n".join(lines) + "\n")
    (folder / "create_tarball.sh").write_text(httpx.get(f"{base}/handout/create_tarball.sh").text)
    env = {**os.environ, "GRADER_TOKEN": creds["token"], "GRADER_WAIT": "120"}
    run = subprocess.run(["bash", "create_tarball.sh"], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    # the section's own message: the file, the error and its line, not "Not run: could not be imported"
    assert re.search(rf"^Linear Layer:\n    mytorch/nn/linear\.py has a syntax error on line {broken + 1}\b",
                     out, re.MULTILINE), out
    assert "could not be imported" not in out
    assert re.search(r"^\d+/100: \d+ section\(s\) failed: .*Linear Layer", out, re.MULTILINE), out
    assert re.search(rf"^Feedback page: {re.escape(base)}/submissions/\d+$", out, re.MULTILINE), out


def test_wait_answers_200_with_a_summary_and_an_absolute_page_url(settings, good_tar):
    files = reference_files()
    linear = files["mytorch/nn/linear.py"].decode()
    files["mytorch/nn/linear.py"] = linear.replace("return A @ self.W.T + self.Ones @ self.b.T",
                                                   "return A @ self.W.T").encode()
    svc = Service(settings, workers=1)
    with svc.client:   # the lifespan runs the grading worker
        r = svc.submit("alice", "open", make_tar(files), wait=120)
        assert r.status_code == 200, r.text[:500]
        body = r.json()
        assert body["status"] == "graded"
        assert body["page_url"] == f"{settings.base_url.rstrip('/')}/submissions/{body['id']}"
        assert body["summary"].startswith(f"{body['score']}/100: ") and "Linear Layer" in body["summary"]
        passing = [t for s in body["sections"] for t in s["tests"] if t["passed"]]
        failing = [t for s in body["sections"] for t in s["tests"] if not t["passed"]]
        assert passing and failing
        assert all("checks" not in t for t in passing)          # not every passing check...
        assert all(t["checks"] for t in failing)                 # ...but every failing test's
        r = svc.submit("alice", "open", good_tar, wait=120, verbose=1)
        assert r.status_code == 200 and r.json()["summary"] == "100/100: every section passed."
        assert all("checks" in t for s in r.json()["sections"] for t in s["tests"])
        r = svc.submit("bob", "open", good_tar)                  # no wait: stored, 202
        assert r.status_code == 202 and "summary" not in r.json()
    svc.db.dispose()
