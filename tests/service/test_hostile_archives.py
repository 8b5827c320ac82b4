"""Hostile archives through the service (issue 18, items 1, 2 and 12). Names the worker's unpack
could not write were accepted at upload and then ended as grader errors, never counted (7 uploads
passed a 2-submission limit); a NUL byte in a member name was an HTTP 500; the source page unpacked
the archive again on every view. Now: refused at upload with a sentence; one that reaches the
worker anyway (stored before the check knew it) is the student's refusal, counted, and its source
page shows the sentence; a handin is read once for its source pages."""

from __future__ import annotations

import html
import io
import tarfile
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.course import handin_source, submissions
from app.store.models import Submission, User
from grader.suites.hw1p1 import LAYOUT


def _tar(*members: tuple[str, bool], pax: dict[str, str] | None = None) -> bytes:
    """A tar of a valid handin plus MEMBERS ((name, is_folder); names may hold surrogate-escaped bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT if pax else tarfile.GNU_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as archive:
        entries = [("models/mlp.py", False), ("mytorch/nn/linear.py", False), *members]
        for name, folder in entries:
            info = tarfile.TarInfo(name)
            if folder:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = 6
                archive.addfile(info, io.BytesIO(b"x = 1\n"))
        if pax:
            info = tarfile.TarInfo("mytorch/nn/x.py")
            info.pax_headers, info.size = pax, 6
            archive.addfile(info, io.BytesIO(b"x = 1\n"))
    return buffer.getvalue()


UNWRITABLE = {
    "file-and-folder-of-one-name": _tar(("mytorch/nn/linear.py/inner.py", False)),
    "name-over-name-max": _tar(("mytorch/" + "n" * 300 + ".py", False)),
    "path-over-path-max": _tar(("mytorch/" + "/".join(["d" * 200] * 6) + "/x.py", False)),
    "name-not-utf8": _tar((b"mytorch/nn/caf\xe9.py".decode("utf-8", "surrogateescape"), False)),
    "folder-name-not-utf8": _tar((b"mytorch/\xff\xfe".decode("utf-8", "surrogateescape"), True)),
}
NUL_IN_NAME = _tar(pax={"path": "mytorch/nn/a\0b.py"})


def _is_sentence(message: str) -> bool:
    return bool(message) and "\n" not in message and message[0].isupper() and message.endswith(".") \
        and len(message) < 300


def _stored(service) -> int:
    with service.db.read_session() as s:
        return s.scalar(select(func.count()).select_from(Submission))


@pytest.mark.parametrize("kind", UNWRITABLE)
def test_name_the_workers_unpack_cannot_write_is_refused_at_upload(service, kind):
    r = service.submit("alice", "open", UNWRITABLE[kind])
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "bad_name" and _is_sentence(r.json()["message"]), r.json()
    assert _stored(service) == 0


def test_nul_byte_in_a_tar_member_name_is_refused_with_a_sentence(service):
    """Item 12: tarfile's filter took the name to os.path.realpath, which raised: HTTP 500."""
    r = service.submit("alice", "open", NUL_IN_NAME)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "bad_name" and "control character" in r.json()["message"]
    assert _is_sentence(r.json()["message"]) and _stored(service) == 0


def test_unwritable_names_that_reach_the_worker_are_refused_and_counted(service, tiny_tar):
    """Stored without the check (as before it knew these names): the worker's unpack refuses them
    as the student's handin error, which counts against the 2-submission limit; never a grader error."""
    with service.db.read_session() as s:
        alice = s.scalar(select(User).where(User.username == "alice"))
    a = service.app.state.assessments["limited"]
    ids = [submissions.create_submission(service.db, a, alice, UNWRITABLE[kind], "handin.tar",
                                         datetime.now(UTC), max_attempts=2).id
           for kind in ("file-and-folder-of-one-name", "name-not-utf8")]
    assert service.drain() == 2
    for sub_id in ids:
        view = service.get("alice", f"/api/v1/submissions/{sub_id}").json()
        assert view["status"] == "graded" and view["score"] == 0 and not view["grader_error"], view
        assert _is_sentence(view["handin_error"]), view
        page = service.get("alice", f"/submissions/{sub_id}/source")   # was a 500
        assert page.status_code == 200 and html.escape(view["handin_error"], quote=False) in page.text
    r = service.submit("alice", "limited", tiny_tar)
    assert r.status_code == 403 and "all 2 submissions" in r.json()["message"]


def test_source_page_reads_the_archive_once_not_on_every_view(service, good_tar):
    sub_id = service.submit("alice", "open", good_tar).json()["id"]
    reads, hits = handin_source.CACHE.reads, handin_source.CACHE.hits
    for path in ("", "mytorch/nn/linear.py", "models/mlp.py", ""):
        page = service.get("alice", f"/submissions/{sub_id}/source", params={"path": path})
        assert page.status_code == 200 and "linear.py" in page.text
    # the first view read it (unless an earlier test already had); the other views did not
    assert handin_source.CACHE.reads - reads <= 1 and handin_source.CACHE.hits - hits >= 3


def test_source_cache_keeps_at_most_its_bytes(good_tar):
    """Bounded: handins beyond the budget push the least recently viewed out, to be read again."""
    cost = handin_source.SourceCache.cost(handin_source.read_handin(good_tar, LAYOUT))
    cache = handin_source.SourceCache(max_bytes=int(cost * 2.5))   # two handins fit, not three
    for digest in ("a", "b", "c"):
        cache.get(digest, LAYOUT, lambda: good_tar)
    assert cache.reads == 3 and cache.size_bytes <= cache.max_bytes
    cache.get("c", LAYOUT, lambda: good_tar)   # kept
    assert (cache.reads, cache.hits) == (3, 1)
    cache.get("a", LAYOUT, lambda: good_tar)   # dropped for c: read again
    assert cache.reads == 4 and cache.size_bytes <= cache.max_bytes
