"""Similarity reports through the service: counted handins only, a background job with progress,
pages for TAs only, on SQLite and Postgres."""

from __future__ import annotations

import subprocess
import sys
import time

from support import every_graded_file, make_tar, reference_files

from app.auth import admin
from app.course import similarity_reports as reports
from app.store.models import SimilarityReport
from grader.similarity import DEFAULT_THRESHOLD

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
    carl = make_tar(every_graded_file({"mytorch/nn/linear.py": INDEPENDENT_LINEAR}))
    assert service.submit("carl", "open", carl).status_code == 202
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
    r = service.post("tina", "/ta/assessments/open/similarity", data={"threshold": "250"}, follow_redirects=False)
    # back to the similarity page, which says why once: a reload does not send the form again
    assert r.status_code == 303 and r.headers["location"].startswith("/ta/assessments/open/similarity?shown=")
    page = service.get("tina", r.headers["location"])
    assert "The threshold is a percentage between 0 and 100." in page.text
    assert "The threshold is a percentage" not in service.get("tina", r.headers["location"]).text


def test_similarity_command_prints_the_pairs_and_stores_the_report(service, settings, good_tar, tiny_tar):
    _class(service, good_tar, tiny_tar)
    run = subprocess.run([sys.executable, "-m", "app.cli", "similarity", "open"],   # the default threshold
                         env=env_for(settings), capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("3 handins") and "/ta/similarity/" in lines[0]
    assert f"at or above {DEFAULT_THRESHOLD * 100:g}%" in lines[0]   # the TAs' page's, not a copy of it
    assert [line.split("\t")[:2] for line in lines[1:]] == [["alice", "bob"]]
    assert "comparing: 4/4" in run.stderr
    with service.db.read_session() as s:
        assert s.query(SimilarityReport).one().state == "done"


def test_similarity_command_refuses_an_unknown_assessment(settings):
    run = subprocess.run([sys.executable, "-m", "app.cli", "similarity", "nope"], env=env_for(settings),
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 2 and "no assessment 'nope'" in run.stderr


def _renamed_into_other_modules() -> bytes:
    """The reference moved into renamed modules (each graded path re-exports it): grades the same."""
    files = {}
    for path, data in reference_files().items():
        folder, name = path.rsplit("/", 1)
        if name == "__init__.py":
            files[path] = data
            continue
        files[f"{folder}/impl_{name}"] = data.decode().replace("dLdZ", "gz").encode()
        files[path] = f"from .impl_{name[:-3]} import *\n".encode()
    return make_tar(files)


def test_a_copy_moved_into_renamed_modules_is_paired_by_the_service(service, good_tar, tiny_tar):
    _class(service, good_tar, tiny_tar)
    admin.add_user(service.db, "mallory", "student", "mallory-password", display_name="Mallory Moved")
    service.tokens["mallory"] = admin.create_token(service.db, "mallory")
    assert service.submit("mallory", "open", _renamed_into_other_modules()).status_code == 202
    assert service.drain() == 1
    a = service.app.state.assessments["open"]
    final = reports.run_report(service.db, a, reports.request_report(service.db, a, None, threshold=0.5))
    paired = {(p.a, p.b) for p in final.report.pairs}
    assert ("alice", "mallory") in paired and ("bob", "mallory") in paired


def test_attack_a_long_report_never_shows_as_interrupted(service):
    """A report of crafted handins ran past STALE_AFTER and showed "interrupted", inviting a second
    run. While its process works on it, the heartbeat keeps it "running"."""
    a = service.app.state.assessments["open"]
    report_id = reports.request_report(service.db, a, None)
    with service.db.session() as s:
        row = s.get(SimilarityReport, report_id)
        row.state, row.updated_at = "running", row.updated_at - reports.STALE_AFTER * 2
        s.commit()
    assert reports.get_report(service.db, report_id).state == "interrupted"   # no heartbeat: it looks dead
    with reports.Heartbeat(service.db, report_id, every=0.05):
        deadline = time.monotonic() + 120   # generous: CI machines are loaded
        while reports.get_report(service.db, report_id).state != "running":
            assert time.monotonic() < deadline, "the heartbeat never touched the report"
            time.sleep(0.05)
    assert reports.get_report(service.db, report_id).state == "running"


def _archive_tar() -> bytes:
    """Two earlier handins: the reference renamed (what alice's copy comes from) and an independent one."""
    nested = make_tar({"mytorch/nn/linear.py": INDEPENDENT_LINEAR, "models/mlp.py": b""})
    files = {f"f24/sam/hw1p1_handout/{p}": data.decode().replace("self.A", "self.inputs").encode()
             for p, data in reference_files().items()}
    files["f24/ivy.tar"] = nested
    return make_tar(files)


def test_ta_imports_an_archive_and_the_report_lists_matches_against_it(service, good_tar):
    admin.add_user(service.db, "dora", "student", "dora-password", display_name="Dora Diaz")
    service.tokens["dora"] = admin.create_token(service.db, "dora")
    assert service.submit("dora", "open", good_tar).status_code == 202
    assert service.submit("bob", "open", make_tar(every_graded_file(
        {"mytorch/nn/linear.py": INDEPENDENT_LINEAR.replace(b"batch", b"x")}))).status_code == 202
    assert service.drain() == 2
    r = service.post("tina", "/ta/assessments/open/similarity/archive", data={"source": "F24 semester"},
                     files={"archive": ("f24.tar", _archive_tar())}, follow_redirects=False)
    assert r.status_code == 303, r.text
    index = service.get("tina", r.headers["location"]).text
    assert "Added 2 handin(s) to the archive" in index and "F24 semester" in index
    r = service.post("tina", "/ta/assessments/open/similarity", data={"threshold": "50"}, follow_redirects=False)
    page = r.headers["location"]
    deadline = time.monotonic() + 600
    while service.get("tina", page + "/status").json()["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the report did not finish"
        time.sleep(0.2)
    a = service.app.state.assessments["open"]
    final = reports.get_report(service.db, int(page.rsplit("/", 1)[1]))
    # dora handed in sam's F24 code renamed, bob ivy's; within the class nothing pairs.
    found = [(p.a, p.b) for p in final.report.archive_pairs]
    assert sorted(found) == [("bob", "F24 semester / ivy"), ("dora", "F24 semester / sam")]
    assert final.report.pairs == []
    at = found.index(("dora", "F24 semester / sam"))
    html = service.get("tina", page).text
    assert "Matches against the archive" in html and "Dora Diaz" in html
    pair = service.get("tina", f"{page}/archive/{at}")
    assert pair.status_code == 200 and "Dora Diaz" in pair.text and "F24 semester / sam" in pair.text
    assert f'/submissions/{final.submissions["dora"]}' in pair.text and "<mark>" in pair.text
    # Marked reviewed: the pair page and the report say so, and it stays so in the next report.
    r = service.post("tina", f"{page}/archive/{at}/review", data={"reviewed": "1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{page}/archive/{at}"
    assert "Reviewed by tina" in service.get("tina", f"{page}/archive/{at}").text
    again = reports.run_report(service.db, a, reports.request_report(service.db, a, None, threshold=0.5))
    assert "✓ tina" in service.get("tina", f"/ta/similarity/{again.id}").text
    # Removing the source empties the archive.
    r = service.post("tina", "/ta/assessments/open/similarity/archive/remove", data={"source": "F24 semester"},
                     follow_redirects=False)
    assert r.status_code == 303 and reports.archive_sources(service.db, "open") == []


def test_students_cannot_touch_the_archive_or_reviews(service, good_tar):
    r = service.post("alice", "/ta/assessments/open/similarity/archive", data={"source": "x"},
                     files={"archive": ("f24.tar", _archive_tar())}, follow_redirects=False)
    assert r.status_code == 403 and reports.archive_sources(service.db, "open") == []
    assert service.post("alice", "/ta/similarity/1/pairs/0/review", data={"reviewed": "1"},
                        follow_redirects=False).status_code == 403


def test_archive_command_adds_a_folder_of_handins(service, settings, tmp_path):
    for path, data in reference_files().items():
        target = tmp_path / "public" / "solution-one" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    run = subprocess.run([sys.executable, "-m", "app.cli", "similarity-archive", "open", str(tmp_path / "public"),
                          "--source", "GitHub public"], env=env_for(settings), capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert "added 1 handin(s) to the archive as 'GitHub public'" in run.stdout
    assert [(s.source, s.entries) for s in reports.archive_sources(service.db, "open")] == [("GitHub public", 1)]


def test_attack_crafted_handins_make_no_huge_report_or_pair_page(service):
    """Two crafted handins (78 modules of 256 KiB, all imported by linear.py) made a 41 MB stored
    report and a 39 MB pair page. Their report and pair page stay within the caps."""
    import gzip
    import json

    from grader import similarity
    from grader.suites.hw1p1 import SUITE

    files = {f"mytorch/nn/pad{i:02d}.py": "\n".join(f"v{j} = [{j}, {i} * {j}, v{max(j - 1, 0)}.T @ w{j % 7}]"
                                                     for j in range(9000)).encode()[:256 << 10] for i in range(78)}
    files["mytorch/nn/linear.py"] = "".join(f"from .pad{i:02d} import *\n" for i in range(78)).encode()
    crafted = similarity.handin_sources(gzip.compress(make_tar(files), compresslevel=1), SUITE)
    report = similarity.compare_handins({"alice": crafted.files, "bob": dict(crafted.files)}, None)
    body = report.model_dump_json()
    assert len(body) <= similarity.MAX_REPORT_BYTES and len(report.pairs) == 1
    with service.db.session() as s:
        row = SimilarityReport(assessment="open", threshold=0.5, state="done", body=body,
                               submissions=json.dumps({"alice": 1, "bob": 2}))
        s.add(row)
        s.commit()
        report_id = row.id
    page = service.get("tina", f"/ta/similarity/{report_id}/pairs/0")
    assert page.status_code == 200 and "<mark>" in page.text
    from app.web.similarity import MAX_PAGE_SOURCE_BYTES
    assert len(page.content) <= 2 * MAX_PAGE_SOURCE_BYTES


def test_a_report_stored_by_the_file_by_file_comparison_says_to_start_a_new_one(service):
    """Reports stored before the whole-handin comparison hold files by path with their sources; their
    page says so instead of failing."""
    old = ('{"handins": 2, "threshold": 0.5, "max_sharers": 10, "skeleton_files": 0, "pairs": [{"a": "alice", '
           '"b": "bob", "similarity_a": 1.0, "similarity_b": 1.0, "tokens": 80, "files": [{"path": "m.py", '
           '"tokens": 80, "source_a": "x", "source_b": "x", "spans_a": [], "spans_b": []}]}]}')
    with service.db.session() as s:
        row = SimilarityReport(assessment="open", threshold=0.5, state="done", body=old)
        s.add(row)
        s.commit()
        report_id = row.id
    page = service.get("tina", f"/ta/similarity/{report_id}")
    assert page.status_code == 200 and "older version of the comparison" in page.text
    assert service.get("tina", f"/ta/similarity/{report_id}/pairs/0").status_code == 404
