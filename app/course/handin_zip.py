"""Every counted handin of an assessment as one zip, streamed as it is built: one folder per
student holding the graded files as the grader reads them (for offline review or MOSS), and
manifest.csv saying whose folder is which submission.

No name in the zip comes unchecked from a student: a folder is the username with anything but
letters, digits, '.', '_' and '-' replaced (never '.' or '..'), a file's path is one the grader's
own reader accepted (`grader.handin.read_handin_files`: no absolute path, no '..', no control
character) and is checked again part by part here. A handin the reader refuses is put in its
folder as the archive it was, under a fixed name, with a note saying why."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.course import standings
from app.course.assessments import Assessment
from app.store.db import Database
from app.store.models import Blob, Submission, User
from grader.handin import HandinError, UnpackLimits, read_handin_files

_NOT_A_NAME_CHAR = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class CountedHandin:
    folder: str
    username: str
    display_name: str
    submission_id: int
    version: int
    received_at: datetime
    score: int | None
    sha256: str
    size: int             # the archive's bytes as uploaded


def folder_name(username: str, taken: set[str]) -> str:
    """A folder for USERNAME that stays inside the zip and is not in TAKEN (which it joins)."""
    base = _NOT_A_NAME_CHAR.sub("_", username).strip(".") or "student"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


def safe_path(path: str) -> str | None:
    """PATH when every part of it is a plain name (no '', '.', '..', backslash or control
    character), else None."""
    parts = path.split("/")
    if any(p in ("", ".", "..") or "\\" in p or any(ord(c) < 0x20 or ord(c) == 0x7F for c in p) for p in parts):
        return None
    return path


def counted_handins(session: Session, a: Assessment) -> list[CountedHandin]:
    """The submission that counts for each student of A, by username, with its archive's size."""
    ids = list(standings.counted_submissions(session, a).values())
    if not ids:
        return []
    rows = session.execute(select(Submission, User.username, User.display_name, Blob.size)
                           .join(User, User.id == Submission.user_id)
                           .join(Blob, Blob.sha256 == Submission.blob_sha256)
                           .where(Submission.id.in_(ids)).order_by(User.username)).all()
    taken: set[str] = {"manifest.csv"}
    return [CountedHandin(folder_name(username, taken), username, display_name, sub.id, sub.version,
                          sub.received_at, sub.score, sub.blob_sha256, size)
            for sub, username, display_name, size in rows]


class _Sink(io.RawIOBase):
    """What zipfile writes into, taken out chunk by chunk (not seekable: zipfile then writes each
    entry's sizes after its data, so nothing is ever rewritten)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def _entry(name: str, when: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=max(when.timetuple()[:6], (1980, 1, 1, 0, 0, 0)))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def manifest_csv(handins: list[CountedHandin], notes: dict[str, str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["folder", "username", "display_name", "submission_id", "version", "received_at", "score",
                "sha256", "archive_bytes", "note"])
    for h in handins:   # names come from rosters: no text cell may start a formula
        row = (h.folder, h.username, h.display_name, h.submission_id, h.version, h.received_at.isoformat(),
               "" if h.score is None else h.score, h.sha256, h.size, notes.get(h.folder, ""))
        w.writerow([standings.spreadsheet_cell(x) for x in row])
    return buf.getvalue()


def stream_zip(db: Database, a: Assessment, handins: list[CountedHandin]) -> Iterator[bytes]:
    """The zip's bytes, one student at a time (one archive in memory at once)."""
    layout = a.grading_suite.layout
    keep = UnpackLimits().file_bytes
    sink = _Sink()
    notes: dict[str, str] = {}
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for h in handins:
            with db.read_session() as s:
                data = s.scalar(select(Blob.data).where(Blob.sha256 == h.sha256))
            try:
                files = read_handin_files(data, layout=layout, keep_bytes=keep)
            except HandinError as exc:
                notes[h.folder] = f"not unpacked: {exc.message}"
                z.writestr(_entry(f"{h.folder}/NOT-UNPACKED.txt", h.received_at), exc.message + "\n")
                z.writestr(_entry(f"{h.folder}/handin-v{h.version}.archive", h.received_at), data)
            else:
                for f in files:
                    path = safe_path(f.path)
                    if path is None:
                        notes[h.folder] = "a file with an unsafe name was left out"
                        continue
                    z.writestr(_entry(f"{h.folder}/{path}", h.received_at), f.head)
            yield sink.take()
        z.writestr(_entry("manifest.csv", datetime.now()), manifest_csv(handins, notes))
    yield sink.take()
