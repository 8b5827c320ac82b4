"""The JSON API under /api/v1 (OpenAPI at /docs)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.responses import PlainTextResponse
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app import accounts, extensions, queue, regrades, standings, submissions, uploads
from app import login as login_flow
from app.assessments import Assessment
from app.auth import (
    SESSION_COOKIE,
    clear_session,
    csrf_token,
    principal_for,
    refuse_foreign_origin,
    require_staff,
    require_user,
)
from app.errors import ApiError, NotFound
from app.models import User


class ErrorBody(BaseModel):
    """Every failure's body."""
    error: str = Field(description="a stable code, e.g. unauthorized, forbidden, not_found, too_large, "
                                   "rate_limited, refused, csrf")
    message: str = Field(description="one sentence for a person")


def _error(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


ERRORS = {401: _error("Not logged in: send `Authorization: Bearer TOKEN` (or log in for a cookie)."),
          403: _error("Not allowed: your role, the assessment's rules (`refused`), or a missing CSRF token."),
          404: _error("No such thing, or not yours to see."),
          413: _error("The request body is larger than this route accepts."),
          429: _error("Too many requests; `Retry-After` says how many seconds to wait.")}
router = APIRouter(prefix="/api/v1", responses=ERRORS)

# Shown in the OpenAPI document (the "Authorize" button); require_user does the checking.
_bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="An API token from your profile page or `grader token create`.")
_session = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                        description="The cookie set by POST /api/v1/login; writes also need X-CSRF-Token.")
BearerDoc = Annotated[object, Security(_bearer)]
SessionDoc = Annotated[object, Security(_session)]


async def _user(request: Request, _t: BearerDoc, _c: SessionDoc) -> User:
    return await require_user(request)


async def _staff(request: Request, _t: BearerDoc, _c: SessionDoc) -> User:
    return await require_staff(request)


UserDep = Annotated[User, Depends(_user)]
StaffDep = Annotated[User, Depends(_staff)]


def _assessment(request: Request, slug: str) -> Assessment:
    a = request.app.state.assessments.get(slug)
    if a is None:
        raise ApiError(404, "not_found", f"There is no assessment called {slug!r}.")
    return a


def _db(request: Request):
    return request.app.state.db


def _settings(request: Request):
    return request.app.state.settings


def _user_view(user: User) -> dict:
    return {"username": user.username, "display_name": user.display_name, "role": user.role,
            "nickname": user.nickname}


# ---------------------------------------------------------------------------------------------
# sessions, tokens, activation

class LoginBody(BaseModel):
    username: str = Field(max_length=login_flow.MAX_USERNAME)
    password: str = Field(max_length=accounts.MAX_PASSWORD_LENGTH)


@router.post("/login", tags=["accounts"])
def login(body: LoginBody, request: Request, response: Response) -> dict:
    """Sets the session cookie; the returned csrf_token goes in X-CSRF-Token on later writes."""
    refuse_foreign_origin(request)
    result = login_flow.attempt(request, body.username, body.password)
    if result.refused:
        raise ApiError(429, "rate_limited", "Too many login attempts; wait a minute and try again.",
                       headers={"Retry-After": str(result.refused.retry_after)})
    if result.user is None:
        raise ApiError(401, "bad_credentials", "Wrong username or password.")
    return {"user": _user_view(result.user), "csrf_token": login_flow.start_session(request, response, result.user)}


@router.post("/logout", tags=["accounts"])
def logout(request: Request, response: Response, user: UserDep) -> dict:
    """Ends every session of your account (a copied cookie too); API tokens stay valid."""
    with _db(request).session() as s, s.begin():
        accounts.end_sessions(s.get(User, user.id))
    clear_session(response)
    return {"ok": True}


@router.get("/me", tags=["accounts"])
async def me(request: Request, user: UserDep) -> dict:
    return {"user": _user_view(user), "csrf_token": csrf_token(await principal_for(request))}


class ActivateBody(BaseModel):
    token: str
    password: str = Field(min_length=8, max_length=accounts.MAX_PASSWORD_LENGTH)


@router.post("/activate", tags=["accounts"])
def activate(body: ActivateBody, request: Request) -> dict:
    refuse_foreign_origin(request)
    try:
        with _db(request).session() as s, s.begin():
            user = accounts.activate(s, body.token, body.password)
            return {"user": _user_view(user)}
    except accounts.AccountError as exc:
        raise ApiError(400, "activation_failed", str(exc)) from None


class TokenBody(BaseModel):
    name: str = "token"


@router.get("/tokens", tags=["accounts"])
def list_tokens(request: Request, user: UserDep) -> list[dict]:
    from sqlalchemy import select

    from app.models import ApiToken
    with _db(request).read_session() as s:
        rows = s.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
        return [{"id": t.id, "name": t.name, "created_at": t.created_at.isoformat(),
                 "revoked": t.revoked_at is not None} for t in rows]


@router.post("/tokens", status_code=201, tags=["accounts"])
def create_token(body: TokenBody, request: Request, user: UserDep) -> dict:
    """The token is shown once; only its hash is stored."""
    with _db(request).session() as s, s.begin():
        row, token = accounts.create_token(s, s.get(User, user.id), body.name)
        return {"id": row.id, "name": row.name, "token": token}


@router.delete("/tokens/{token_id}", tags=["accounts"])
def revoke_token(token_id: int, request: Request, user: UserDep) -> dict:
    with _db(request).session() as s, s.begin():
        if not accounts.revoke_token(s, user, token_id):
            raise ApiError(404, "not_found", "No such token.")
    return {"revoked": token_id}


# ---------------------------------------------------------------------------------------------
# assessments and submissions

@router.get("/assessments", tags=["submissions"])
def list_assessments(request: Request, user: UserDep) -> list[dict]:
    out = []
    with _db(request).read_session() as s:
        for a in request.app.state.assessments.values():
            d = extensions.deadlines(s, a, user.id)
            out.append({"slug": a.slug, "title": a.title, "timezone": a.timezone, "max_score": a.max_score,
                        "early_bonus": a.early_bonus, "counts": a.counts,
                        "max_submissions": a.max_submissions, "min_interval_seconds": a.min_interval_seconds,
                        "late_penalty_percent_per_day": a.late_penalty_percent_per_day,
                        "upload_max_bytes": a.upload_max_bytes, "sections": a.sections,
                        "release": a.local(d.release), "early": a.local(d.early), "due": a.local(d.due),
                        "last_accepted": a.local(d.last_accepted),
                        "extension_seconds": extensions.extension_seconds(s, user.id, a.slug)})
    return out


@router.post("/assessments/{slug}/submissions", status_code=202, tags=["submissions"],
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": {"type": "object", "required": ["handin"],
                            "properties": {"handin": {"type": "string", "format": "binary"}}}}}}})
async def submit(slug: str, request: Request, user: UserDep, wait: float = 0) -> dict:
    """Upload `handin` (multipart). 202 once it is stored; `?wait=SECONDS` waits for the grade."""
    a = _assessment(request, slug)
    # every check, limit and the storage are app/uploads.py's; UploadRefused is an ApiError
    accepted = await uploads.accept_upload(request, uploads.Upload.of(request, a, user))
    body = {"id": accepted.submission_id, "version": accepted.version, "status": accepted.status,
            "url": f"/api/v1/submissions/{accepted.submission_id}"}
    if wait > 0:
        view = await _wait_for_grade(request, user, accepted.submission_id,
                                     min(wait, _settings(request).max_wait_seconds))
        body |= view
    return body


async def _wait_for_grade(request: Request, user: User, sub_id: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        view = await run_in_threadpool(_view, request, user, sub_id)
        if view["status"] in ("graded", "error") or loop.time() >= end:
            return view
        await asyncio.sleep(0.25)


def _visible_submission(s, user: User, sub_id: int):
    """The submission if USER may see it; another student's id is a 404 like a missing one."""
    try:
        return submissions.visible_submission(s, user, sub_id)
    except NotFound:
        raise ApiError(404, "not_found", "No such submission.") from None


def _view(request: Request, user: User, sub_id: int) -> dict:
    with _db(request).read_session() as s:
        sub = _visible_submission(s, user, sub_id)
        return submissions.submission_view(s, sub, request.app.state.assessments.get(sub.assessment), user)


@router.get("/submissions/{submission_id}", tags=["submissions"])
def get_submission(submission_id: int, request: Request, user: UserDep) -> dict:
    """Status (queued, running, graded, error), score, sections with feedback, policy, timestamps."""
    return _view(request, user, submission_id)


@router.get("/submissions/{submission_id}/handin", tags=["submissions"])
def download_handin(submission_id: int, request: Request, user: UserDep) -> Response:
    with _db(request).read_session() as s:
        sub = _visible_submission(s, user, submission_id)
        data = submissions.blob_bytes(s, sub)
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="handin-{submission_id}.tar"'})


@router.get("/assessments/{slug}/submissions", tags=["submissions"])
def list_submissions(slug: str, request: Request, user: UserDep, user_name: str | None = None) -> list[dict]:
    """Your submissions (TAs: everyone's, or one student's with ?user_name=)."""
    a = _assessment(request, slug)
    with _db(request).read_session() as s:
        return submissions.submission_views(s, submissions.list_submissions(s, user, slug, user_name), a, user)


@router.get("/assessments/{slug}/scoreboard", tags=["scores"])
def scoreboard(slug: str, request: Request, user: UserDep) -> list[dict]:
    """TAs see names; students see the same rows by nickname."""
    a = _assessment(request, slug)
    with _db(request).read_session() as s:
        return standings.scoreboard(s, a, user)


@router.get("/assessments/{slug}/gradebook.csv", tags=["scores"], response_class=PlainTextResponse)
def gradebook(slug: str, request: Request, user: StaffDep) -> Response:
    a = _assessment(request, slug)
    with _db(request).read_session() as s:
        text = standings.gradebook_csv(s, a)
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{slug}-gradebook.csv"'})


# ---------------------------------------------------------------------------------------------
# staff: regrades, extensions, queue

@router.post("/submissions/{submission_id}/regrade", status_code=202, tags=["staff"])
def regrade_one(submission_id: int, request: Request, user: StaffDep) -> dict:
    try:
        queued = regrades.regrade_one(_db(request), submission_id, _settings(request).max_attempts)
    except NotFound:
        raise ApiError(404, "not_found", "No such submission.") from None
    return {"queued": int(queued)}


@router.post("/assessments/{slug}/regrade", status_code=202, tags=["staff"])
def regrade_all(slug: str, request: Request, user: StaffDep) -> dict:
    _assessment(request, slug)
    return {"queued": regrades.regrade_all(_db(request), slug, _settings(request).max_attempts)}


class ExtensionBody(BaseModel):
    days: float = 0
    hours: float = 0
    seconds: int = 0


@router.put("/assessments/{slug}/extensions/{username}", tags=["staff"])
def set_extension(slug: str, username: str, body: ExtensionBody, request: Request, user: StaffDep) -> dict:
    """Moves the student's due date and last accepted moment (0 removes the extension)."""
    _assessment(request, slug)
    seconds = int(body.days * 86400 + body.hours * 3600 + body.seconds)
    try:
        extensions.set_extension(_db(request), slug, username, seconds, user)
    except NotFound:
        raise ApiError(404, "not_found", f"No user {username!r}.") from None
    except accounts.NotAllowed:
        raise ApiError(403, "forbidden", "A TA grants extensions to students only.") from None
    return {"username": username, "assessment": slug, "seconds": max(seconds, 0)}


@router.get("/queue", tags=["staff"])
def queue_health(request: Request, user: StaffDep) -> dict:
    with _db(request).read_session() as s:
        info = queue.health(s)
    info["workers_in_process"] = request.app.state.worker_count
    return info
