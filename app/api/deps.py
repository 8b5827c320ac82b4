"""What every JSON route starts from: the documented error bodies, the caller (UserDep, StaffDep),
the assessment named in the path, the database and the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, Field

from app.auth.sessions import SESSION_COOKIE, require_staff, require_user
from app.course.assessments import Assessment
from app.exceptions import ApiError
from app.store.models import User


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


def find_assessment(request: Request, slug: str) -> Assessment:
    a = request.app.state.assessments.get(slug)
    if a is None:
        raise ApiError(404, "not_found", f"There is no assessment called {slug!r}.")
    return a


def database(request: Request):
    return request.app.state.db


def settings(request: Request):
    return request.app.state.settings
