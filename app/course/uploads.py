"""The upload use case: one handin arriving through either door (the web form or the JSON API).

Both routes call `accept_upload` and only translate its outcome: an `Accepted` on success, an
`UploadRefused` (status, code, one sentence) otherwise. Every check, every limit and the storage
live here, in the order they run:

  1. the per-user upload rate                       (before anything is read)
  2. the assessment's rules: open, attempts, spacing (before the body is read; binding again at 6)
  3. the declared size (Content-Length)              (before the body is read)
  4. the `handin` file field, read up to the limit
  5. the archive unpacks within the grader's limits  (nothing unpackable takes a submission slot)
     and holds every graded file                     (a tar built wrong never replaces a counted score)
  6. blob + submission + job stored in one transaction, the rules checked again inside it

The receive time that counts (deadlines, early bonus, late penalty) is when the whole body had
arrived (app.http.bodylimits stamps it; app.http.uploads reads it with the body), not when the headers did: a dribbled upload cannot beat a
deadline. Step 2 uses the headers' time only to refuse early what would be refused anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.concurrency import run_in_threadpool

from app.auth.ratelimit import RateLimiter
from app.course import submissions
from app.course.assessments import Assessment
from app.exceptions import ApiError
from app.settings import Settings
from app.store.db import Database
from app.store.models import User
from grader.handin import HandinError, UnpackLimits, check_handin

FILE_FIELD = "handin"


@dataclass(frozen=True)
class Handin:
    data: bytes
    filename: str
    received_at: datetime          # when the whole body had arrived: deadlines are judged by it


# Reads the handin from the request body, at most CAP + 1 bytes of it (app.http.uploads): the use
# case decides when the body is read, the door knows how.
HandinReader = Callable[[int], Awaitable[Handin]]


@dataclass(frozen=True)
class Upload:
    """Who uploads what, when: the use case's input, whichever door the handin came through."""
    assessment: Assessment
    user: User
    headers_at: datetime           # when the request's headers were handled: the cheap precheck's time
    declared_bytes: int | None     # the request's Content-Length, when it sent one
    read: HandinReader


@dataclass(frozen=True)
class Accepted:
    """Stored durably and queued for grading."""
    submission_id: int
    version: int
    status: str


class UploadRefused(ApiError):
    """The upload is not accepted: `status` (HTTP), `code` (machine-readable), `message` (one sentence)."""


def readable_size(n: int) -> str:
    """`10 MiB`, `500 KiB`, `900 bytes`: a limit as a student reads it (a limit under 1 MiB must
    not read "0 MiB")."""
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return f"{n} bytes"


def too_large(a: Assessment) -> UploadRefused:
    return UploadRefused(413, "too_large", f"The upload is larger than {readable_size(a.upload_max_bytes)}.")


def no_handin() -> UploadRefused:
    return UploadRefused(422, "no_handin", f"Send the archive as the multipart file field `{FILE_FIELD}`.")


def check_rate(limiter: RateLimiter, settings: Settings, upload: Upload) -> None:
    """Blocking (a database write): call from a worker thread."""
    verdict = limiter.hit(f"upload:{upload.user.id}", settings.uploads_per_minute)
    if not verdict.allowed:
        raise UploadRefused(429, "rate_limited", "Too many uploads in a minute; wait and try again.",
                            headers={"Retry-After": str(verdict.retry_after)})


def check_declared_size(upload: Upload, overhead: int) -> None:
    """Refuse an oversized body before reading it: more than the assessment's limit plus OVERHEAD
    (the `upload_overhead_bytes` of multipart framing the body limits allow too)."""
    if upload.declared_bytes is not None and upload.declared_bytes > upload.assessment.upload_max_bytes + overhead:
        raise too_large(upload.assessment)


async def check_rules(db: Database, upload: Upload) -> None:
    decision = await run_in_threadpool(submissions.precheck, db, upload.assessment, upload.user, upload.headers_at)
    if not decision.allowed:
        raise UploadRefused(403, "refused", decision.reason)


async def read_handin(upload: Upload) -> Handin:
    """The `handin` file field, never more than the assessment's limit (+1 byte to tell)."""
    cap = upload.assessment.upload_max_bytes
    handin = await upload.read(cap)
    if len(handin.data) > cap:
        raise too_large(upload.assessment)
    return handin


def check_archive(handin: Handin, a: Assessment) -> None:
    """Refuse what the grader could never unpack, a handin built for another assessment or one
    missing a graded file, before it takes a submission slot (and so before it can replace the
    score that counts)."""
    try:   # reads every member as the worker's unpack will, writing nothing
        check_handin(handin.data, UnpackLimits(archive_bytes=a.upload_max_bytes), layout=a.grading_suite.layout,
                     required=a.grading_suite.required_files)
    except HandinError as exc:
        raise UploadRefused(413 if exc.code == "too_large" else 422, exc.code, exc.message) from None


def store(db: Database, settings: Settings, upload: Upload, handin: Handin) -> Accepted:
    try:
        sub = submissions.create_submission(db, upload.assessment, upload.user, handin.data, handin.filename,
                                            handin.received_at, max_attempts=settings.max_attempts, reuse=True)
    except submissions.Refused as exc:
        raise UploadRefused(403, "refused", exc.reason) from None
    return Accepted(sub.id, sub.version, sub.status)


async def accept_upload(upload: Upload, db: Database, limiter: RateLimiter, settings: Settings) -> Accepted:
    """Run every check in order and store the handin; raises UploadRefused at the first that fails."""
    await run_in_threadpool(check_rate, limiter, settings, upload)
    await check_rules(db, upload)
    check_declared_size(upload, settings.upload_overhead_bytes)
    handin = await read_handin(upload)
    await run_in_threadpool(check_archive, handin, upload.assessment)
    return await run_in_threadpool(store, db, settings, upload, handin)
