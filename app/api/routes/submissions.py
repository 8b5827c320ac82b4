"""Assessments, uploads and submissions under /api/v1."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import AssessmentDep, AssessmentsDep, DbDep, LimiterDep, SettingsDep, UserDep
from app.api.models import AnySubmission, Submitted
from app.course import choices, extensions, submissions, uploads
from app.course.assessments import Assessment
from app.course.views import AssessmentPublic
from app.exceptions import ApiError, NotFound
from app.http.bodylimits import BodyKind, body_limit
from app.http.uploads import upload_from
from app.store.db import Database
from app.store.models import User, utcnow
from app.store.states import SubmissionStatus

router = APIRouter(tags=["submissions"])


@router.get("/assessments", response_model=list[AssessmentPublic])
def list_assessments(user: UserDep, db: DbDep, known: AssessmentsDep) -> list[AssessmentPublic]:
    out = []
    with db.read_session() as s:
        for a in known.values():
            d = extensions.deadlines(s, a, user.id)
            out.append(AssessmentPublic(
                slug=a.slug, title=a.title, timezone=a.timezone, max_score=a.max_score,
                early_bonus=a.early_bonus, counts=a.counts, max_submissions=a.max_submissions,
                min_interval_seconds=a.min_interval_seconds,
                late_penalty_percent_per_day=a.late_penalty_percent_per_day,
                upload_max_bytes=a.upload_max_bytes, sections=a.sections, release=a.local(d.release),
                early=a.local(d.early), due=a.local(d.due), last_accepted=a.local(d.last_accepted),
                extension_seconds=extensions.extension_seconds(s, user.id, a.slug)))
    return out


@router.post("/assessments/{slug}/submissions", status_code=202, response_model=Submitted,
             responses={200: {"description": "Stored and graded within ?wait=", "model": Submitted},
                        202: {"description": "Stored; grading is queued"}},
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": {"type": "object", "required": ["handin"],
                            "properties": {"handin": {"type": "string", "format": "binary"}}}}}}})
@body_limit(BodyKind.UPLOAD)
async def submit(request: Request, user: UserDep, a: AssessmentDep, db: DbDep, settings: SettingsDep,
                 limiter: LimiterDep, known: AssessmentsDep, wait: float = 0, verbose: bool = False) -> Response:
    """Upload `handin` (multipart). 202 once it is stored; `?wait=SECONDS` waits for the grade and
    answers 200 with a one-line `summary` once graded. Passing tests' checks only with `?verbose=1`."""
    # every check, limit and the storage are app/course/uploads.py's; UploadRefused is an ApiError
    accepted = await uploads.accept_upload(upload_from(request, a, user), db, limiter, settings)
    body = {"id": accepted.submission_id, "version": accepted.version, "status": accepted.status,
            "url": f"/api/v1/submissions/{accepted.submission_id}"}
    if wait > 0:
        view = (await _wait_for_grade(db, known, user, accepted.submission_id,
                                      min(wait, settings.max_wait_seconds)))
        body |= view if verbose else _without_passing_checks(view)
    # absolute: the script and curl print it for the student to open
    body["page_url"] = settings.base_url.rstrip("/") + f"/submissions/{accepted.submission_id}"
    done = wait > 0 and SubmissionStatus(body["status"]).is_final   # as documented: 200 only from ?wait
    if done:
        body["summary"] = _summary(body)
    # built by hand (200 or 202, and the view's fields only from ?wait), checked against its model
    return JSONResponse(Submitted.model_validate(body).model_dump(mode="json", exclude_unset=True),
                        status_code=200 if done else 202)


def _without_passing_checks(view: dict) -> dict:
    """A passing test keeps its name and points; its list of passing checks only with ?verbose=1."""
    sections = [s | {"tests": [{k: v for k, v in t.items() if k != "checks"} if t.get("passed") else t
                               for t in s.get("tests", [])]} for s in view.get("sections", [])]
    return view | {"sections": sections}


def _summary(view: dict) -> str:
    """One line: the score and which sections failed (or why nothing was graded)."""
    if view.get("grader_error"):
        return "Grader error (not your fault, does not count): " + view["grader_error"].splitlines()[0]
    if view.get("handin_error"):
        return "Cannot grade this handin: " + view["handin_error"].splitlines()[0]
    failed = [s["name"] for s in view.get("sections", []) if not s.get("passed")]
    score = f"{view.get('score')}/{view.get('max_score')}"
    if not failed:
        return f"{score}: every section passed."
    return f"{score}: {len(failed)} section(s) failed: {', '.join(failed)}."


async def _wait_for_grade(db: Database, known: dict[str, Assessment], user: User, sub_id: int,
                          seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        view = await run_in_threadpool(_view, db, known, user, sub_id)
        if SubmissionStatus(view["status"]).is_final or loop.time() >= end:
            return view
        await asyncio.sleep(0.25)


def _visible_submission(s, user: User, sub_id: int):
    """The submission if USER may see it; another student's id is a 404 like a missing one."""
    try:
        return submissions.visible_submission(s, user, sub_id)
    except NotFound:
        raise ApiError(404, "not_found", "No such submission.") from None


def _view(db: Database, known: dict[str, Assessment], user: User, sub_id: int) -> dict:
    with db.read_session() as s:
        sub = _visible_submission(s, user, sub_id)
        return submissions.submission_view(s, sub, known.get(sub.assessment), user)


@router.get("/submissions/{submission_id}", response_model=AnySubmission)
def get_submission(submission_id: int, user: UserDep, db: DbDep, known: AssessmentsDep) -> dict:
    """Status (queued, running, graded, error), score, sections with feedback, policy, timestamps."""
    return _view(db, known, user, submission_id)


@router.post("/submissions/{submission_id}/count", response_model=AnySubmission)
def choose_counted(submission_id: int, user: UserDep, db: DbDep, known: AssessmentsDep) -> dict:
    """Make your graded submission the one that counts, on an assessment with `counts = "chosen"`
    (Gradescope's active submission). It counts until you upload again; 409 `not_chosen` with a
    sentence when it cannot count (another rule, no grade yet, the assessment closed)."""
    with db.read_session() as s:
        _visible_submission(s, user, submission_id)
    try:
        choices.choose(db, known, user, submission_id, utcnow())
    except NotFound:   # staff see every submission but choose for nobody
        raise ApiError(403, "forbidden", "Only the student who submitted it chooses what counts.") from None
    except choices.NotChosen as exc:
        raise ApiError(409, "not_chosen", exc.reason) from None
    return _view(db, known, user, submission_id)


@router.get("/submissions/{submission_id}/handin", response_class=Response,
            responses={200: {"description": "The handin archive as it was uploaded", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
def download_handin(submission_id: int, user: UserDep, db: DbDep) -> Response:
    with db.read_session() as s:
        sub = _visible_submission(s, user, submission_id)
        data = submissions.blob_bytes(s, sub)
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="handin-{submission_id}.tar"'})


@router.get("/assessments/{slug}/submissions", response_model=list[AnySubmission])
def list_submissions(user: UserDep, a: AssessmentDep, db: DbDep,
                     user_name: str | None = None) -> list[dict]:
    """Your submissions (TAs: everyone's, or one student's with ?user_name=)."""
    with db.read_session() as s:
        return submissions.submission_views(s, submissions.list_submissions(s, user, a.slug, user_name), a, user)
