"""Similarity reports as background jobs: compare every student's counted handin with every other's
and with the assessment's archive (earlier semesters' handins, public solutions).

A report is a database row (so any web process can show it). The comparison itself is CPU-bound,
so it runs in a child process at low CPU priority: the web tier keeps answering while it works, and
the request that asked for it returns at once. The parent thread relays progress into the row and
touches it every HEARTBEAT_EVERY seconds while the child lives, so a long report is never shown as
interrupted; a row that stops being touched for STALE_AFTER (its process died with a restart)
shows as interrupted and the TA starts a new one.

The archive is stored per assessment as the sources each entry contributes (read and capped once,
when imported), labelled with the source a TA gave it. Reviews mark a pair (two students, or a
student and an archive entry) as looked at, across reports.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

from pydantic import ValidationError
from sqlalchemy import delete, func, select

from app.course.assessments import Assessment
from app.store.db import Database
from app.store.models import (
    Blob,
    SimilarityArchiveEntry,
    SimilarityReport,
    SimilarityReview,
    Submission,
    User,
    utcnow,
)
from app.store.states import ReportState, move
from grader import similarity
from grader.suite import Suite

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=2)
HEARTBEAT_EVERY = 15.0   # seconds between two touches of a running report's row
PROGRESS_EVERY = 0.5     # seconds between two progress writes
ARCHIVE_SEPARATOR = " / "   # an archive entry's label: "<source> / <entry>"


@dataclass(frozen=True)
class ReportView:
    id: int
    assessment: str
    state: ReportState
    done: int
    total: int
    threshold: float
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    report: similarity.Report | None
    submissions: dict[str, int]     # student -> the submission compared


def view(row: SimilarityReport, now: datetime | None = None, with_body: bool = False) -> ReportView:
    state, error, body = ReportState(row.state), row.error, None
    if state.is_pending and (now or utcnow()) - row.updated_at > STALE_AFTER:
        state = ReportState.INTERRUPTED
    if row.body and with_body:
        try:
            body = similarity.Report.model_validate_json(row.body)
        except ValidationError:   # stored by the file-by-file comparison before this one
            state = ReportState.FAILED
            error = "this report was stored by an older version of the comparison; start a new one"
    return ReportView(row.id, row.assessment, state, row.done, row.total, row.threshold, row.created_at,
                      row.finished_at, error, body, json.loads(row.submissions or "{}"))


def request_report(db: Database, a: Assessment, requested_by: User | None,
                   threshold: float = similarity.DEFAULT_THRESHOLD) -> int:
    with db.session() as s:
        row = SimilarityReport(assessment=a.slug, threshold=threshold,
                               requested_by=requested_by.id if requested_by else None)
        s.add(row)
        s.commit()
        return row.id


def start_in_background(db: Database, a: Assessment, report_id: int) -> threading.Thread:
    thread = threading.Thread(target=run_report, args=(db, a, report_id), kwargs={"in_child": True},
                              name=f"similarity-{report_id}", daemon=True)
    thread.start()
    return thread


def counted_handins(db: Database, a: Assessment) -> dict[str, tuple[int, bytes]]:
    """Each student's counted submission (the one the scoreboard uses): username -> (id, archive)."""
    from app.course.standings import counted_submissions

    with db.read_session() as s:
        chosen = list(counted_submissions(s, a).values())
        if not chosen:
            return {}
        rows = s.execute(select(User.username, Submission.id, Blob.data)
                         .join(Submission, Submission.user_id == User.id)
                         .join(Blob, Blob.sha256 == Submission.blob_sha256)
                         .where(Submission.id.in_(chosen)).order_by(User.username)).all()
        return {username: (sub_id, data) for username, sub_id, data in rows}


def skeleton_for(a: Assessment) -> dict[str, str]:
    """The handout's skeleton when the assessment names one, else one derived from the reference."""
    if a.skeleton:
        return similarity.read_sources(Path(a.skeleton))
    return similarity.skeleton_of(a.grading_suite.reference_root)


# --------------------------------------------------------------------------------------------
# The archive

@dataclass(frozen=True)
class ArchiveSource:
    source: str
    entries: int
    added_at: datetime


@dataclass(frozen=True)
class ArchiveImport:
    source: str
    added: list[str]
    skipped: dict[str, str]      # entry -> why it was not added


def import_archive(db: Database, a: Assessment, source: str, data: bytes | Path,
                   added_by: User | None) -> ArchiveImport:
    """Add the handins in DATA (a tar/zip of them, or a folder) to A's archive under SOURCE (e.g.
    "F24" or "GitHub, public"); an entry of the same source and name is replaced."""
    source = " ".join(source.split())[:100]
    if not source:
        raise ValueError("Name the archive's source (e.g. F24, or GitHub public solutions).")
    entries, skipped = similarity.read_archive(data, a.grading_suite)
    with db.session() as s:
        if entries:
            s.execute(delete(SimilarityArchiveEntry).where(
                SimilarityArchiveEntry.assessment == a.slug, SimilarityArchiveEntry.source == source,
                SimilarityArchiveEntry.name.in_(list(entries))))
        for name, read in entries.items():
            s.add(SimilarityArchiveEntry(assessment=a.slug, source=source, name=name[:200],
                                         files=json.dumps(read.files), left_out=read.left_out,
                                         added_by=added_by.id if added_by else None))
        s.commit()
    return ArchiveImport(source, sorted(entries), skipped)


def archive_sources(db: Database, slug: str) -> list[ArchiveSource]:
    with db.read_session() as s:
        rows = s.execute(select(SimilarityArchiveEntry.source, func.count(), func.max(SimilarityArchiveEntry.added_at))
                         .where(SimilarityArchiveEntry.assessment == slug)
                         .group_by(SimilarityArchiveEntry.source).order_by(SimilarityArchiveEntry.source)).all()
        return [ArchiveSource(source, count, added) for source, count, added in rows]


def remove_archive_source(db: Database, slug: str, source: str) -> int:
    with db.session() as s:
        removed = s.execute(delete(SimilarityArchiveEntry).where(
            SimilarityArchiveEntry.assessment == slug, SimilarityArchiveEntry.source == source)).rowcount
        s.commit()
        return removed


def archive_handins(db: Database, slug: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """A's archive as the comparison takes it: label -> sources, and label -> what the caps left out."""
    with db.read_session() as s:
        rows = s.execute(select(SimilarityArchiveEntry.source, SimilarityArchiveEntry.name,
                                SimilarityArchiveEntry.files, SimilarityArchiveEntry.left_out)
                         .where(SimilarityArchiveEntry.assessment == slug)).all()
    labels = {f"{source}{ARCHIVE_SEPARATOR}{name}": (json.loads(files), left_out)
              for source, name, files, left_out in rows}
    return ({label: files for label, (files, _) in labels.items()},
            {label: left for label, (_, left) in labels.items() if left})


# --------------------------------------------------------------------------------------------
# Reviews

@dataclass(frozen=True)
class Review:
    by: str
    at: datetime


def reviews(db: Database, slug: str) -> dict[tuple[str, str], Review]:
    with db.read_session() as s:
        rows = s.execute(select(SimilarityReview.a, SimilarityReview.b, User.username, SimilarityReview.reviewed_at)
                         .join(User, User.id == SimilarityReview.reviewed_by, isouter=True)
                         .where(SimilarityReview.assessment == slug)).all()
        return {(a, b): Review(by or "?", at) for a, b, by, at in rows}


def set_reviewed(db: Database, slug: str, pair: similarity.Pair, by: User, reviewed: bool) -> None:
    """Mark PAIR (its two names) reviewed or not, for every report of assessment SLUG."""
    with db.session() as s:
        s.execute(delete(SimilarityReview).where(SimilarityReview.assessment == slug,
                                                 SimilarityReview.a == pair.a, SimilarityReview.b == pair.b))
        if reviewed:
            s.add(SimilarityReview(assessment=slug, a=pair.a, b=pair.b, reviewed_by=by.id))
        s.commit()


def full_names(db: Database, usernames) -> dict[str, str]:
    with db.read_session() as s:
        rows = s.execute(select(User.username, User.display_name).where(User.username.in_(list(usernames)))).all()
        return {u: d or u for u, d in rows}


# --------------------------------------------------------------------------------------------
# Running a report

def _compare(archives: dict[str, bytes], skeleton: dict[str, str], archive: dict[str, dict[str, str]],
             archive_capped: dict[str, str], threshold: float, progress: Callable[[int, int], None],
             suite: Suite) -> similarity.Report:
    handins, capped = {}, dict(archive_capped)
    for user, data in archives.items():
        try:
            read = similarity.handin_sources(data, suite)
        except Exception as exc:  # noqa: BLE001 - an unreadable handin is left out (it scored 0 anyway)
            log.info("similarity: skipping %s's handin: %s", user, exc)
            continue
        handins[user] = read.files
        if read.left_out:
            capped[user] = read.left_out
    return similarity.compare_handins(handins, skeleton, archive=archive, threshold=threshold, capped=capped,
                                      progress=progress)


def _child(conn, *args) -> None:
    """In the child process: lowest priority, progress and the result sent through the pipe."""
    os.nice(19)
    try:
        report = _compare(*args[:5], lambda d, t: conn.send(("progress", d, t)), args[5])
        conn.send((ReportState.DONE, report.model_dump_json()))
    except BaseException as exc:  # noqa: BLE001 - anything at all: the parent must hear why
        conn.send((ReportState.FAILED, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _set(db: Database, report_id: int, **fields) -> None:
    with db.session() as s:
        row = s.get(SimilarityReport, report_id)
        if "state" in fields:
            fields["state"] = move(row.state, fields["state"])
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        s.commit()


class Heartbeat:
    """Touches report REPORT_ID every EVERY seconds from its own thread while the report runs, so
    the row says "running" as long as this process works on it, however slow the progress."""

    def __init__(self, db: Database, report_id: int, every: float = HEARTBEAT_EVERY):
        self.db, self.report_id, self.every = db, report_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"similarity-{report_id}-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                _set(self.db, self.report_id)
            except Exception:   # a missed beat is retried at the next one
                log.warning("similarity report %s: heartbeat failed", self.report_id, exc_info=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_report(db: Database, a: Assessment, report_id: int, *, in_child: bool = False,
               on_progress: Callable[[int, int], None] | None = None) -> ReportView:
    """Run report REPORT_ID to the end (in this thread, the comparison in a child process when
    IN_CHILD) and return its final view."""
    with db.read_session() as s:
        threshold = s.get(SimilarityReport, report_id).threshold
    try:
        with Heartbeat(db, report_id):
            _set(db, report_id, state=ReportState.RUNNING)
            counted = counted_handins(db, a)
            _set(db, report_id, submissions=json.dumps({user: sub_id for user, (sub_id, _) in counted.items()}))
            archive, archive_capped = archive_handins(db, a.slug)
            args = ({user: data for user, (_, data) in counted.items()}, skeleton_for(a), archive,
                    archive_capped, threshold)
            last = 0.0

            def progress(done: int, total: int) -> None:
                nonlocal last
                if on_progress:
                    on_progress(done, total)
                if done == total or time.monotonic() - last >= PROGRESS_EVERY:
                    last = time.monotonic()
                    _set(db, report_id, done=done, total=total)

            if in_child:
                body = _run_in_child(args, progress, a.grading_suite)
            else:
                body = _compare(*args, progress, a.grading_suite).model_dump_json()
        _set(db, report_id, state=ReportState.DONE, body=body, finished_at=utcnow())
    except Exception as exc:
        log.exception("similarity report %s failed", report_id)
        _set(db, report_id, state=ReportState.FAILED, error=str(exc)[:2000], finished_at=utcnow())
    return get_report(db, report_id)


def _run_in_child(args: tuple, progress, suite: Suite) -> str:
    ctx = multiprocessing.get_context("spawn")   # no fork of a threaded web server
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, *args, suite), daemon=True)
    proc.start()
    child.close()
    try:
        while True:
            try:
                message = parent.recv()
            except EOFError:
                raise RuntimeError(f"the comparison process ended without a result "
                                   f"(exit code {proc.exitcode})") from None
            if message[0] == "progress":
                progress(message[1], message[2])
            elif message[0] == ReportState.DONE:
                return message[1]
            else:
                raise RuntimeError(message[1])
    finally:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()


def latest_reports(db: Database, slug: str, limit: int = 10) -> list[ReportView]:
    with db.read_session() as s:
        rows = s.scalars(select(SimilarityReport).where(SimilarityReport.assessment == slug)
                         .order_by(SimilarityReport.id.desc()).limit(limit)).all()
        now = utcnow()
        return [view(r, now) for r in rows]


def get_report(db: Database, report_id: int) -> ReportView | None:
    with db.read_session() as s:
        row = s.get(SimilarityReport, report_id)
        return view(row, with_body=True) if row else None
