"""What TAs do through /api/v1: regrades, extensions, the queue's health."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.api import deps
from app.api.deps import StaffDep
from app.auth import accounts
from app.course import extensions, regrades
from app.exceptions import ApiError, NotFound
from app.grading import queue
from app.grading.supervisor import describe_workers
from app.grading.worker import work_dir_health

router = APIRouter(tags=["staff"])


@router.post("/submissions/{submission_id}/regrade", status_code=202)
def regrade_one(submission_id: int, request: Request, user: StaffDep) -> dict:
    try:
        queued = regrades.regrade_one(deps.database(request), submission_id, deps.settings(request).max_attempts)
    except NotFound:
        raise ApiError(404, "not_found", "No such submission.") from None
    return {"queued": int(queued)}


@router.post("/assessments/{slug}/regrade", status_code=202)
def regrade_all(slug: str, request: Request, user: StaffDep) -> dict:
    deps.find_assessment(request, slug)
    return {"queued": regrades.regrade_all(deps.database(request), slug, deps.settings(request).max_attempts)}


class ExtensionBody(BaseModel):
    days: float = 0
    hours: float = 0
    seconds: int = 0


@router.put("/assessments/{slug}/extensions/{username}")
def set_extension(slug: str, username: str, body: ExtensionBody, request: Request, user: StaffDep) -> dict:
    """Moves the student's due date and last accepted moment (0 removes the extension)."""
    deps.find_assessment(request, slug)
    seconds = int(body.days * 86400 + body.hours * 3600 + body.seconds)
    try:
        extensions.set_extension(deps.database(request), slug, username, seconds, user)
    except NotFound:
        raise ApiError(404, "not_found", f"No user {username!r}.") from None
    except accounts.NotAllowed:
        raise ApiError(403, "forbidden", "A TA grants extensions to students only.") from None
    return {"username": username, "assessment": slug, "seconds": max(seconds, 0)}


@router.get("/queue")
def queue_health(request: Request, user: StaffDep) -> dict:
    with deps.database(request).read_session() as s:
        info = queue.health(s)
    # this server's own workers (None: a web-only tier); `grader worker`s show in running_jobs
    workers = describe_workers(request.app.state.workers)
    info["server_workers"] = None if workers is None else {**asdict(workers), "what": workers.what}
    info["work_dir"] = work_dir_health(deps.settings(request))
    return info
