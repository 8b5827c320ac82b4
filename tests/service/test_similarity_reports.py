"""Similarity reports through the service: counted handins only, a background job with progress,
pages for TAs only, on SQLite and Postgres."""

from __future__ import annotations

import subprocess
import sys
import time

from support import make_tar, reference_files

from app.auth import admin
from app.course import similarity_reports as reports
from app.store.models import SimilarityReport

from .conftest import env_for

INDEPENDENT_LINEAR = b'''import numpy as np


class Linear:
    def __init__(self, in_features, out_features, debug=False):
        self.W = np.zeros((out_features, in_features))
        self.b = np.zeros((out_features, 1))
        self.debug = debug

    def forward(self, A):
        batch = np.asarray(A, dtype=float)
        self.cache = batch
        return np.einsum("ni,oi->no", batch, self.W) + np.reshape(self.b, (1, -1))

    def backward(self, dLdZ):
        grads = np.asarray(dLdZ)
        self.dLdW = np.einsum("no,ni->oi", grads, self.cache)
        self.dLdb = np.sum(grads, axis=0).reshape(-1, 1)
        result = np.einsum("no,oi->ni", grads, self.W)
        if self.debug:
            self.dLdA = result
        return result
'''


def _renamed_copy() -> bytes:
    """The reference with names changed and comments added: what a copier submits."""
    files = {}
    for path, data in reference_files().items():
        text = data.decode().replace("dLdZ", "grad_z").replace("dLdA", "grad_a").replace("self.A", "self.inp")
        files[path] = ("# my own work\n" + text).encode()
    return make_tar(files)


def _class(service, good_tar, tiny_tar) -> None:
    admin.add_user(service.db, "carl", "student", "carl-password")
    service.tokens["carl"] = admin.create_token(service.db, "carl")
    assert service.submit("alice", "open", tiny_tar).status_code == 202    # superseded: not counted
    assert service.submit("alice", "open", good_tar).status_code == 202
    assert service.submit("bob", "open", _renamed_copy()).status_code == 202
    assert service.submit("carl", "open", make_tar({"mytorch/nn/linear.py": INDEPENDENT_LINEAR,
                                                    "models/mlp.py": b""})).status_code == 202
    assert service.drain() == 4


def test_similarity_report_finds_the_renamed_copy_among_counted_handins(service, good_tar, tiny_tar):
    _class(service, good_tar, tiny_tar)
    a = service.app.state.assessments["open"]
    seen = []
    report_id = reports.request_report(service.db, a, None, threshold=0.5)
    final = reports.run_report(service.db, a, report_id, on_progress=lambda d, t: seen.append((d, t)))
    assert final.state == "done" and final.report.handins == 3
    assert [(p.a, p.b) for p in final.report.pairs] == [("alice", "bob")]
    assert final.report.pairs[0].similarity_a > 0.9
    assert seen[-1] == (final.done, final.total) and final.done == final.total == 4


def test_similarity_report_runs_in_the_background_and_pages_show_it(service, good_tar, tiny_tar):
    _class(service, good_tar, tiny_tar)
    r = service.post("tina", "/ta/assessments/open/similarity", data={"threshold": "50"},
                     follow_redirects=False)
    assert r.status_code == 303
    page = r.headers["location"]
    deadline = time.monotonic() + 600   # generous: CI machines are loaded
    while service.get("tina", page + "/status").json()["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the report did not finish"
        time.sleep(0.2)
    status = service.get("tina", page + "/status").json()
    assert status["state"] == "done" and status["done"] == status["total"] > 0
    html = service.get("tina", page).text
    assert "alice" in html and "bob" in html and "carl" not in html
    pair = service.get("tina", page + "/pairs/0")
    assert pair.status_code == 200 and "<mark>" in pair.text and "grad_z" in pair.text
    assert service.get("tina", page + "/pairs/1").status_code == 404
    listing = service.get("tina", "/ta/assessments/open/similarity").text
    assert page in listing


def test_students_cannot_see_or_start_similarity_reports(service, good_tar, tiny_tar):
    assert service.get("alice", "/ta/assessments/open/similarity").status_code == 403
    assert service.post("alice", "/ta/assessments/open/similarity", data={"threshold": "50"},
                        follow_redirects=False).status_code == 403
    with service.db.read_session() as s:
        assert s.query(SimilarityReport).count() == 0


def test_a_report_that_stops_moving_shows_as_interrupted(service):
    a = service.app.state.assessments["open"]
    report_id = reports.request_report(service.db, a, None)
    with service.db.session() as s:
        row = s.get(SimilarityReport, report_id)
        row.state, row.updated_at = "running", row.updated_at - reports.STALE_AFTER * 2
        s.commit()
    assert reports.get_report(service.db, report_id).state == "interrupted"


def test_bad_threshold_is_refused(service):
    r = service.post("tina", "/ta/assessments/open/similarity", data={"threshold": "250"})
    assert r.status_code == 400


def test_similarity_command_prints_the_pairs_and_stores_the_report(service, settings, good_tar, tiny_tar):
    _class(service, good_tar, tiny_tar)
    run = subprocess.run([sys.executable, "-m", "app.cli", "similarity", "open", "--threshold", "50"],
                         env=env_for(settings), capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("3 handins") and "/ta/similarity/" in lines[0]
    assert [line.split("\t")[:2] for line in lines[1:]] == [["alice", "bob"]]
    assert "comparing: 4/4" in run.stderr
    with service.db.read_session() as s:
        assert s.query(SimilarityReport).one().state == "done"


def test_similarity_command_refuses_an_unknown_assessment(settings):
    run = subprocess.run([sys.executable, "-m", "app.cli", "similarity", "nope"], env=env_for(settings),
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 2 and "no assessment 'nope'" in run.stderr
