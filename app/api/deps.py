"""What every JSON route starts from: the documented error bodies and the caller (UserDep, StaffDep,
shown in the OpenAPI document as its two security schemes). The rest (DbDep, SettingsDep,
AssessmentDep, ...) is app.http.deps', shared with the pages and re-exported here."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, Field

from app.auth.sessions import SESSION_COOKIE, Principal
from app.http import deps
from app.http.deps import AssessmentDep, AssessmentsDep, DbDep, LimiterDep, SettingsDep, WorkersDep
from app.store.models import User

__all__ = ["ERRORS", "AssessmentDep", "AssessmentsDep", "DbDep", "ErrorBody", "LimiterDep", "SettingsDep",
           "StaffDep", "UserDep", "WorkersDep"]


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

# Shown in the OpenAPI document (the "Authorize" button); app.http.deps.api_user does the checking.
_bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="An API token from your profile page or `grader token create`.")
_session = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                        description="The cookie set by POST /api/v1/login; writes also need X-CSRF-Token.")
BearerDoc = Annotated[object, Security(_bearer)]
SessionDoc = Annotated[object, Security(_session)]


async def _user(_t: BearerDoc, _c: SessionDoc,
                principal: Annotated[Principal, Depends(deps.api_user)]) -> User:
    return principal.user


async def _staff(_t: BearerDoc, _c: SessionDoc,
                 principal: Annotated[Principal, Depends(deps.api_staff)]) -> User:
    return principal.user


UserDep = Annotated[User, Depends(_user)]
StaffDep = Annotated[User, Depends(_staff)]
