"""What TAs do through /api/v1: regrades, extensions, the queue's health."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import AssessmentDep, DbDep, ErrorBody, SettingsDep, StaffDep, WorkersDep
from app.api.models import ExtensionSet, Queued, QueueHealth
from app.auth import accounts
from app.course import adjustments, extensions, regrades
from app.exceptions import ApiError, NotFound
from app.grading import queue
from app.grading.supervisor import describe_workers
from app.grading.worker import work_dir_health

router = APIRouter(tags=["staff"])


@router.post("/submissions/{submission_id}/regrade", status_code=202, response_model=Queued)
def regrade_one(submission_id: int, user: StaffDep, db: DbDep, settings: SettingsDep) -> Queued:
    try:
        queued = regrades.regrade_one(db, submission_id, settings.max_attempts)
    except NotFound:
        raise ApiError(404, "not_found", "No such submission.") from None
    return Queued(queued=int(queued))


@router.post("/assessments/{slug}/regrade", status_code=202, response_model=Queued)
def regrade_all(user: StaffDep, a: AssessmentDep, db: DbDep, settings: SettingsDep) -> Queued:
    return Queued(queued=regrades.regrade_all(db, a.slug, settings.max_attempts))


class ExtensionBody(BaseModel):
    days: float = 0
    hours: float = 0
    seconds: int = 0


@router.put("/assessments/{slug}/extensions/{username}", response_model=ExtensionSet)
def set_extension(username: str, body: ExtensionBody, user: StaffDep, a: AssessmentDep, db: DbDep) -> ExtensionSet:
    """Moves the student's due date and last accepted moment (0 removes the extension)."""
    seconds = int(body.days * 86400 + body.hours * 3600 + body.seconds)
    try:
        extensions.set_extension(db, a.slug, username, seconds, user)
    except NotFound:
        raise ApiError(404, "not_found", f"No user {username!r}.") from None
    except accounts.NotAllowed:
        raise ApiError(403, "forbidden", "A TA grants extensions to students only.") from None
    return ExtensionSet(username=username, assessment=a.slug, seconds=max(seconds, 0))


@router.get("/queue", response_model=QueueHealth)
def queue_health(user: StaffDep, db: DbDep, settings: SettingsDep, server: WorkersDep) -> QueueHealth:
    with db.read_session() as s:
        info = queue.health(s)
    # this server's own workers (None: a web-only tier); `grader worker`s show in running_jobs
    workers = describe_workers(server)
    return QueueHealth(**info, work_dir=work_dir_health(settings),
                       server_workers=None if workers is None else {**asdict(workers), "what": workers.what})



class AdjustmentBody(BaseModel):
    points: int
    reason: str
    comment: str = ""


class AdjustmentOut(BaseModel):
    submission: int
    points: int
    reason: str
    comment: str
    by: str
    at: str


@router.put("/assessments/{slug}/submissions/{submission_id}/adjustment",
            responses={400: {"model": ErrorBody, "description": "Out of bounds, no reason, or not graded yet"}})
def adjust_score(submission_id: int, body: AdjustmentBody, user: StaffDep, a: AssessmentDep,
                 db: DbDep) -> AdjustmentOut:
    """Put a points adjustment in force on a graded submission of SLUG (0 withdraws it): the reason
    is for the staff, the comment is shown to the student; recorded with who and when."""
    try:
        done = adjustments.adjust(db, a, submission_id, user, body.points, body.reason, body.comment)
    except NotFound:
        raise ApiError(404, "not_found", f"No submission {submission_id} of {a.slug}.") from None
    except adjustments.AdjustmentRefused as exc:
        raise ApiError(400, "refused", exc.reason) from None
    return AdjustmentOut(submission=submission_id, points=done.points, reason=done.reason, comment=done.comment,
                         by=done.by, at=done.at.isoformat())
