"""Every counted handin of an assessment as one zip (issue 20 item 12): one folder per student with
the graded files of the submission that counts, manifest.csv, streamed a student at a time, its
count told before and with the download; staff only, and no name a student controls can put an
entry outside its folder (each tried as an attack)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

from support import make_tar, reference_files

from app.course import handin_zip, submissions
from app.grading import queue
from app.store.models import User

BODY = {"assessment": "hw1p1", "score": 90, "max_score": 100, "error": None, "sandbox": "bwrap", "unsafe": False,
        "notes": [], "timings": {}, "sections": []}


def graded_upload(service, username: str, data: bytes, minutes_ago: int = 5) -> int:
    """DATA stored as USERNAME's submission to 'open' (as create_submission stores it) and graded."""
    with service.db.read_session() as s:
        user = s.query(User).filter_by(username=username).one()
    sub = submissions.create_submission(service.db, service.app.state.assessments["open"], user, data, "handin.tar",
                                        datetime.now(UTC) - timedelta(minutes=minutes_ago), max_attempts=service.settings.max_attempts)
    claim = queue.claim(service.db, "test", 60)
    assert queue.record_result(service.db, claim, "test", score=90, max_score=100, body=json.dumps(BODY),
                               handin_error=None)
    return sub.id


def download(service, who: str = "tina"):
    return service.get(who, "/ta/assessments/open/handins.zip")


def test_one_folder_per_student_with_the_graded_files_of_the_submission_that_counts(service):
    good = reference_files()
    broken = dict(good)
    broken["mytorch/optim/sgd.py"] += b"\nSGD.step = lambda self: None\n"
    graded_upload(service, "alice", make_tar(good), minutes_ago=10)
    latest = graded_upload(service, "alice", make_tar(broken), minutes_ago=5)   # "latest" counts
    bobs = graded_upload(service, "bob", make_tar(good))

    page = service.get("tina", "/ta/assessments/open/handins").text
    assert "<strong>2</strong> counted handins" in page and "Download 2 handins as one zip" in page

    r = download(service)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["x-handin-count"] == "2"
    assert 'filename="open-handins-2-students.zip"' in r.headers["content-disposition"]
    z = zipfile.ZipFile(io.BytesIO(r.content))
    names = z.namelist()
    assert {n.split("/")[0] for n in names} == {"alice", "bob", "manifest.csv"}
    assert z.read("alice/mytorch/optim/sgd.py") == broken["mytorch/optim/sgd.py"]
    assert z.read("bob/mytorch/optim/sgd.py") == good["mytorch/optim/sgd.py"]
    graded_files = {p for p in good if p.endswith(".py") and p.startswith(("mytorch/", "models/"))}
    assert {n.removeprefix("bob/") for n in names if n.startswith("bob/")} >= graded_files
    manifest = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode())))
    assert [(m["folder"], m["submission_id"], m["version"]) for m in manifest] == [
        ("alice", str(latest), "2"), ("bob", str(bobs), "1")]


def test_the_zip_is_streamed_a_student_at_a_time(service):
    """No Content-Length (built while it downloads); the generator yields once per student, so one
    archive at a time is in memory."""
    graded_upload(service, "alice", make_tar(reference_files()))
    graded_upload(service, "bob", make_tar(reference_files()))
    assert "content-length" not in download(service).headers
    a = service.app.state.assessments["open"]
    with service.db.read_session() as s:
        handins = handin_zip.counted_handins(s, a)
    chunks = list(handin_zip.stream_zip(service.db, a, handins))
    assert len(chunks) == 3 and all(chunks[:2])   # alice's folder, bob's folder, the manifest and directory
    assert zipfile.ZipFile(io.BytesIO(b"".join(chunks))).testzip() is None


def test_a_student_downloading_every_handin_is_refused(service):
    graded_upload(service, "bob", make_tar(reference_files()))
    r = download(service, "alice")
    assert r.status_code == 403 and b"PK" not in r.content[:2]
    assert service.get("alice", "/ta/assessments/open/handins").status_code == 403
    anonymous = service.client.get("/ta/assessments/open/handins.zip", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_names_a_student_controls_cannot_leave_the_zip_folder(service):
    """Attack: archive members named ../../etc/cron.d/x, /tmp/abs, mytorch\\..\\..\\win.py, and a
    username written before usernames were checked ("../../outside"): every zip entry stays in a
    folder of its own, and the refused archive travels whole under a fixed name."""
    hostile = make_tar({**reference_files(), "../../etc/cron.d/x": b"* * * * * root sh\n",
                        "/tmp/abs.py": b"x = 1\n", "mytorch\\..\\..\\win.py": b"y = 2\n"})
    with service.db.session() as s, s.begin():   # as an older release could have stored it
        s.add(User(username="../../outside", role="student", display_name="=HYPERLINK(\"http://x\")",
                   nickname="old-nick", email=""))
    graded_upload(service, "../../outside", hostile)
    graded_upload(service, "bob", make_tar({**reference_files(), "mytorch/nn/linear.py": b"# bob\n"}))

    z = zipfile.ZipFile(io.BytesIO(download(service).content))
    for name in z.namelist():
        parts = name.split("/")
        assert not name.startswith("/") and "\\" not in name and ".." not in parts and "" not in parts[:-1], name
    folders = {n.split("/")[0] for n in z.namelist()}
    assert folders == {"_.._outside", "bob", "manifest.csv"}
    assert set(z.namelist()) >= {"_.._outside/NOT-UNPACKED.txt", "_.._outside/handin-v1.archive"}
    assert z.read("_.._outside/handin-v1.archive") == hostile
    manifest = z.read("manifest.csv").decode()
    assert "'=HYPERLINK" in manifest and "not unpacked" in manifest


def test_folder_names_stay_plain_and_distinct():
    taken = {"manifest.csv"}
    assert [handin_zip.folder_name(u, taken) for u in ("..", "a/b", "a_b", "manifest.csv", ".hidden")] == [
        "student", "a_b", "a_b-2", "manifest.csv-2", "hidden"]
    assert handin_zip.safe_path("mytorch/nn/linear.py") == "mytorch/nn/linear.py"
    assert [handin_zip.safe_path(p) for p in ("../x.py", "a//b", "a/./b", "a\\b", "a/\x01b")] == [None] * 5
