"""Similarity reports as background jobs: compare every student's counted handin with every other's.

A report is a database row (so any web process can show it). The comparison itself is pure Python
and CPU-bound (tokenising hundreds of files), so it runs in a child process at low CPU priority:
the web tier keeps answering while it works, and the request that asked for it returns at once.
The parent thread relays progress into the row. A row whose progress stops moving for
STALE_AFTER (its process died with a restart) shows as interrupted; the TA starts a new one.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.course.assessments import Assessment
from app.store.db import Database
from app.store.models import Blob, SimilarityReport, Submission, User, utcnow
from grader import similarity
from grader.suite import Layout

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=2)
PROGRESS_EVERY = 0.5   # seconds between two progress writes


@dataclass(frozen=True)
class ReportView:
    id: int
    assessment: str
    state: str              # queued | running | done | failed | interrupted
    done: int
    total: int
    threshold: float
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    report: similarity.Report | None


def view(row: SimilarityReport, now: datetime | None = None, with_body: bool = False) -> ReportView:
    state = row.state
    if state in ("queued", "running") and (now or utcnow()) - row.updated_at > STALE_AFTER:
        state = "interrupted"
    body = similarity.Report.model_validate_json(row.body) if row.body and with_body else None
    return ReportView(row.id, row.assessment, state, row.done, row.total, row.threshold, row.created_at,
                      row.finished_at, row.error, body)


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


def counted_handins(db: Database, a: Assessment) -> dict[str, bytes]:
    """Each student's counted submission (the one the scoreboard uses), by username."""
    from app.course.standings import standings

    with db.read_session() as s:
        chosen = {row.user.username: row.standing.counted.ident
                  for row in standings(s, a) if row.standing.counted is not None}
        if not chosen:
            return {}
        subs = s.execute(select(Submission.id, Blob.data).join(Blob, Blob.sha256 == Submission.blob_sha256)
                         .where(Submission.id.in_(list(chosen.values())))).all()
        data = dict(subs)
        return {user: data[sub_id] for user, sub_id in chosen.items()}


def skeleton_for(a: Assessment) -> dict[str, str]:
    """The handout's skeleton when the assessment names one, else one derived from the reference."""
    if a.skeleton:
        return similarity.read_sources(Path(a.skeleton))
    return similarity.skeleton_of(a.grading_suite.reference_root)


def _compare(archives: dict[str, bytes], skeleton: dict[str, str], threshold: float,
             progress: Callable[[int, int], None], layout: Layout) -> similarity.Report:
    handins = {}
    for user, data in archives.items():
        try:
            handins[user] = similarity.handin_sources(data, layout)
        except Exception as exc:  # noqa: BLE001 - an unreadable handin is left out (it scored 0 anyway)
            log.info("similarity: skipping %s's handin: %s", user, exc)
    return similarity.compare_handins(handins, skeleton, threshold=threshold, progress=progress)


def _child(conn, archives, skeleton, threshold, layout) -> None:
    """In the child process: lowest priority, progress and the result sent through the pipe."""
    os.nice(19)
    try:
        report = _compare(archives, skeleton, threshold, lambda d, t: conn.send(("progress", d, t)), layout)
        conn.send(("done", report.model_dump_json()))
    except BaseException as exc:  # noqa: BLE001 - anything at all: the parent must hear why
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _set(db: Database, report_id: int, **fields) -> None:
    with db.session() as s:
        row = s.get(SimilarityReport, report_id)
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        s.commit()


def run_report(db: Database, a: Assessment, report_id: int, *, in_child: bool = False,
               on_progress: Callable[[int, int], None] | None = None) -> ReportView:
    """Run report REPORT_ID to the end (in this thread, the comparison in a child process when
    IN_CHILD) and return its final view."""
    with db.read_session() as s:
        threshold = s.get(SimilarityReport, report_id).threshold
    try:
        _set(db, report_id, state="running")
        archives = counted_handins(db, a)
        skeleton = skeleton_for(a)
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            if on_progress:
                on_progress(done, total)
            if done == total or time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                _set(db, report_id, done=done, total=total)

        if in_child:
            body = _run_in_child(archives, skeleton, threshold, progress, a.grading_suite.layout)
        else:
            body = _compare(archives, skeleton, threshold, progress, a.grading_suite.layout).model_dump_json()
        _set(db, report_id, state="done", body=body, finished_at=utcnow())
    except Exception as exc:
        log.exception("similarity report %s failed", report_id)
        _set(db, report_id, state="failed", error=str(exc)[:2000], finished_at=utcnow())
    return get_report(db, report_id)


def _run_in_child(archives, skeleton, threshold, progress, layout) -> str:
    ctx = multiprocessing.get_context("spawn")   # no fork of a threaded web server
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, archives, skeleton, threshold, layout), daemon=True)
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
            elif message[0] == "done":
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
