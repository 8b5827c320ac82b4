"""Named dependencies: what a page or a JSON route handler is given, guards included.

A handler names what it needs as a typed parameter and FastAPI supplies it:

    @router.get("/assessments/{slug}")
    async def assessment_page(request: Request, viewer: PageUser, a: AssessmentDep, db: DbDep): ...

The guards among them raise `LoginRequired`, `Forbidden` or `NotFound` (app.exceptions), which
app.http.errors answers in one place: a redirect to the login page (back here afterwards) or an
error page for a browser, `{"error", "message"}` JSON for the API. Dependencies run in the order
the parameters are written, so a guard written first runs first (log in before a 404 is told).

This is the one module that reads `request.app.state` (what create_app wired: the database, the
settings, the assessments, the rate limiter, the flashes, the server's workers).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.auth.ratelimit import RateLimiter
from app.auth.sessions import Principal
from app.course.assessments import Assessment
from app.exceptions import Forbidden, LoginRequired, NotFound
from app.grading.supervisor import Supervisor
from app.http import sessions
from app.http.flash import Flashes
from app.settings import Settings
from app.store.db import Database

# ---------------------------------------------------------------------------------------------
# what create_app wired


def database(request: Request) -> Database:
    return request.app.state.db


def settings(request: Request) -> Settings:
    return request.app.state.settings


def assessments(request: Request) -> dict[str, Assessment]:
    return request.app.state.assessments


def limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter


def flashes(request: Request) -> Flashes:
    return request.app.state.flashes


def workers(request: Request) -> Supervisor | None:
    """This server's own grading workers (None: a web-only tier)."""
    return request.app.state.workers


DbDep = Annotated[Database, Depends(database)]
SettingsDep = Annotated[Settings, Depends(settings)]
AssessmentsDep = Annotated[dict[str, Assessment], Depends(assessments)]
LimiterDep = Annotated[RateLimiter, Depends(limiter)]
FlashesDep = Annotated[Flashes, Depends(flashes)]
WorkersDep = Annotated[Supervisor | None, Depends(workers)]


# ---------------------------------------------------------------------------------------------
# who is asking

async def viewer(request: Request) -> Principal | None:
    """Who is asking, or None; never refuses (the login page, error pages)."""
    return await sessions.principal_for(request, database(request), settings(request))


ViewerDep = Annotated[Principal | None, Depends(viewer)]


async def page_user(request: Request, principal: ViewerDep) -> Principal:
    """A logged-in user (a page: LoginRequired sends the browser to log in and back)."""
    if principal is None:
        raise sessions.login_required(request)
    return principal


PageUser = Annotated[Principal, Depends(page_user)]


async def staff_page(principal: PageUser) -> Principal:
    if not principal.user.is_staff:
        raise Forbidden("Only TAs and admins can open this page.")
    return principal


StaffPage = Annotated[Principal, Depends(staff_page)]


async def user_form(request: Request, principal: PageUser, settings: SettingsDep) -> Principal:
    """A logged-in user's form post: from our own site, with the session's CSRF token."""
    await sessions.check_csrf(request, settings, principal)
    return principal


async def staff_form(request: Request, principal: StaffPage, settings: SettingsDep) -> Principal:
    """A TA's form post: staff first (a student is told no), then the CSRF check."""
    await sessions.check_csrf(request, settings, principal)
    return principal


UserForm = Annotated[Principal, Depends(user_form)]
StaffForm = Annotated[Principal, Depends(staff_form)]


async def polled_user(principal: ViewerDep) -> Principal:
    """A page's polled fragment: without a session an empty 401, which app.js explains."""
    if principal is None:
        raise LoginRequired(polled=True)
    return principal


async def polled_staff(_: Annotated[Principal, Depends(polled_user)], principal: StaffPage) -> Principal:
    return principal   # the polled check runs first: without a session an empty 401, not the login page


PolledUser = Annotated[Principal, Depends(polled_user)]
PolledStaff = Annotated[Principal, Depends(polled_staff)]


async def api_user(request: Request, principal: ViewerDep, settings: SettingsDep) -> Principal:
    """A JSON caller: a token, or a cookie whose writes carry the CSRF token."""
    if principal is None:
        raise sessions.login_required(request)
    await sessions.check_csrf(request, settings, principal)
    return principal


async def api_staff(principal: Annotated[Principal, Depends(api_user)]) -> Principal:
    if not principal.user.is_staff:
        raise Forbidden("Only TAs and admins can do this.")
    return principal


# ---------------------------------------------------------------------------------------------
# what the path names

def assessment(slug: str, known: AssessmentsDep) -> Assessment:
    """The assessment named by the path's {slug}."""
    found = known.get(slug)
    if found is None:
        raise NotFound(f"There is no assessment called {slug!r}.")
    return found


AssessmentDep = Annotated[Assessment, Depends(assessment)]
