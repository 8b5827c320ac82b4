"""Pages every signed-in user has: login, activation, home, assessment, submission, profile,
the nickname scoreboard."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.auth import accounts
from app.auth import login as login_flow
from app.auth.sessions import Principal
from app.course import choices, standings, submissions, uploads
from app.course.assessments import Assessment, default_assessment
from app.exceptions import LoginRequired, NotFound
from app.http import sessions
from app.http.bodylimits import BodyKind, body_limit
from app.http.deps import (
    AssessmentDep,
    AssessmentsDep,
    DbDep,
    FlashesDep,
    LimiterDep,
    PageUser,
    PolledUser,
    SettingsDep,
    UserForm,
    ViewerDep,
)
from app.http.flash import Flashes
from app.http.uploads import upload_from
from app.store.db import Database
from app.store.models import User, utcnow
from app.store.states import LinkPurpose
from app.web import queries
from app.web.common import error_page, render, safe_next

router = APIRouter(include_in_schema=False)


# ---------------------------------------------------------------------------------------------
# login, logout, activation: posted before there is a session, so these two forms carry the
# login form token (app.auth.login) instead of the session's

def _anonymous_form(request: Request, settings, name: str, status_code: int = 200, **context) -> Response:
    """The login or activation page with a fresh form token (and its cookie)."""
    token = sessions.form_token(request, settings)
    response = render(request, name, None, status_code=status_code, form_token=token, **context)
    return sessions.remember_form_token(response, settings, token)


def _forged(request: Request, settings, sent: str) -> str | None:
    """Why this login/activation form is refused as cross-site, or None when it is ours."""
    if sessions.foreign_origin(request, settings):
        return "This form was sent from another site's page. Log in on this site's own login page."
    if not sessions.form_token_ok(request, settings, sent):
        return "This form has expired (or your browser blocks cookies); please try again."
    return None


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, principal: ViewerDep, settings: SettingsDep, next: str = "/",
                     expired: int = 0, username: str = "") -> Response:
    if principal is not None:
        # Already logged in: the form would log in someone else on top; go where they were going.
        return RedirectResponse(safe_next(next), status_code=303)
    notice = "Your session has ended; log in again to continue." if expired else None
    return _anonymous_form(request, settings, "login.html", next=safe_next(next), notice=notice,
                           username=username[:login_flow.MAX_USERNAME])


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, db: DbDep, settings: SettingsDep, limiter: LimiterDep, username: str = Form(""),
          password: str = Form(""), next: str = Form("/"), csrf_token: str = Form("")) -> Response:
    if problem := _forged(request, settings, csrf_token):
        return _anonymous_form(request, settings, "login.html", 403, next=safe_next(next), error=problem)
    result = login_flow.attempt(db, limiter, settings, username, password, client=sessions.client_address(request),
                                device_cookie=request.cookies.get(login_flow.DEVICE_COOKIE))
    shown = username[:login_flow.MAX_USERNAME]
    if result.refused:
        response = _anonymous_form(request, settings, "login.html", 429, next=safe_next(next), username=shown,
                                   error="Too many login attempts; wait a minute and try again.")
        response.headers["Retry-After"] = str(result.refused.retry_after)
        return response
    if result.user is None:
        return _anonymous_form(request, settings, "login.html", 401, next=safe_next(next), username=shown,
                               error="Wrong username or password.")
    response = RedirectResponse(safe_next(next), status_code=303)
    sessions.start_session(response, settings, result.user)
    return response


def _end_sessions(db: Database, user_id: int) -> None:
    with db.session() as s, s.begin():
        accounts.end_sessions(s.get(User, user_id))


@router.post("/logout")
async def logout(request: Request, principal: ViewerDep, db: DbDep, settings: SettingsDep) -> Response:
    if principal is None:   # nothing to end
        return RedirectResponse("/login", status_code=303)
    await sessions.check_csrf(request, settings, principal)
    # Ends this account's sessions everywhere: a copy of the cookie is worthless from now on.
    await run_in_threadpool(_end_sessions, db, principal.user.id)
    response = RedirectResponse("/login", status_code=303)
    sessions.clear_session(response)
    return response


# Activation and password-reset links: one page, worded by the link's purpose. A dead link says
# why and what to do on GET, before anyone types a password; a mistake in the form comes back as a
# redirect to the link's page (a reload never re-posts a password).
LINK_TITLES = {LinkPurpose.ACTIVATION: "Activate your account", LinkPurpose.PASSWORD_RESET: "Choose a new password"}
FORM_PROBLEMS = {"differ": "The two passwords differ.",
                 "short": "Passwords need at least 8 characters.",
                 "long": f"Passwords have at most {accounts.MAX_PASSWORD_LENGTH} characters."}


def _check_link(db: Database, token: str) -> accounts.LinkCheck:
    with db.read_session() as s:
        return accounts.check_link(s, token)


def _link_page(request: Request, settings, token: str, check: accounts.LinkCheck, status_code: int = 200,
               **context) -> Response:
    title = LINK_TITLES.get(check.purpose, "Account link")
    if check.state != accounts.LinkState.OPEN:
        problem = accounts.LINK_PROBLEMS[check.state]
        return render(request, "activate.html", None, 404 if check.state == accounts.LinkState.UNKNOWN else 410,
                      title=title, check=check, dead_end=problem[0].upper() + problem[1:] + ".",
                      used=check.state == accounts.LinkState.USED, **context)
    return _anonymous_form(request, settings, "activate.html", status_code, title=title, check=check, token=token,
                           action=accounts.LINK_PATHS[check.purpose], **context)


@router.get("/activate", response_class=HTMLResponse)
@router.get("/reset-password", response_class=HTMLResponse)
async def activate_page(request: Request, db: DbDep, settings: SettingsDep, token: str = "",
                        problem: str = "") -> Response:
    check = await run_in_threadpool(_check_link, db, token)
    return _link_page(request, settings, token, check, error=FORM_PROBLEMS.get(problem))


@router.post("/activate", response_class=HTMLResponse)
@router.post("/reset-password", response_class=HTMLResponse)
def activate(request: Request, db: DbDep, settings: SettingsDep, flashes: FlashesDep, token: str = Form(""),
             password: str = Form(""), password2: str = Form(""), csrf_token: str = Form("")) -> Response:
    if problem := _forged(request, settings, csrf_token):
        # refused as cross-site: nothing was posted on the user's behalf, so nothing to redirect to
        return _link_page(request, settings, token, _check_link(db, token), 403, error=problem)
    again = f"{request.url.path}?{urlencode({'token': token})}"
    if password != password2:
        return RedirectResponse(f"{again}&problem=differ", status_code=303)
    if len(password) < 8 or len(password) > accounts.MAX_PASSWORD_LENGTH:
        return RedirectResponse(f"{again}&problem={'short' if len(password) < 8 else 'long'}", status_code=303)
    try:
        with db.session() as s, s.begin():
            user = accounts.use_link(s, token, password)
    except accounts.AccountError:
        return RedirectResponse(again, status_code=303)   # the link's page says what happened to it
    # The link proved who this is and the password is new: they are logged in, on their home page.
    notice = f"Your password is set and you are logged in as {user.username}."
    key = flashes.put(user.id, {"notice": notice})
    response = RedirectResponse(f"/?{urlencode({'shown': key})}", status_code=303)
    sessions.start_session(response, settings, user)
    return response


# ---------------------------------------------------------------------------------------------
# home, assessment, submissions

@router.get("/", response_class=HTMLResponse)
async def home(request: Request, principal: PageUser, db: DbDep, known: AssessmentsDep,
               flashes: FlashesDep) -> Response:
    if principal.user.is_staff:   # the TA home: the class per assessment, and the queue
        def overview():
            with db.read_session() as s:
                return queries.ta_overview(s, list(known.values()))
        return render(request, "ta_home.html", principal, overview=await run_in_threadpool(overview),
                      **_shown(request, principal, flashes))

    def load():
        with db.read_session() as s:
            return [queries.assessment_summary(s, a, principal.user) for a in known.values()]
    return render(request, "home.html", principal, summaries=queries.home_order(await run_in_threadpool(load)),
                  **_shown(request, principal, flashes))


def _shown(request: Request, principal: Principal, flashes: Flashes) -> dict:
    """What a form's POST left for this page to show once (app.http.flash), or nothing."""
    key = request.query_params.get("shown")
    return flashes.take(principal.user.id, key) if key else {}


def _assessment_context(db: Database, a: Assessment, user: User) -> dict:
    with db.read_session() as s:
        return {"summary": queries.assessment_summary(s, a, user),
                "submissions": queries.my_submissions(s, a, user)}


@router.get("/assessments/{slug}", response_class=HTMLResponse)
async def assessment_page(request: Request, principal: PageUser, a: AssessmentDep, db: DbDep,
                          flashes: FlashesDep, submitted: int | None = None, upload_lost: int = 0) -> Response:
    ctx = await run_in_threadpool(_assessment_context, db, a, principal.user)
    return render(request, "assessment.html", principal, a=a, submitted=submitted, upload_lost=upload_lost,
                  **ctx | _shown(request, principal, flashes))


@router.get("/assessments/{slug}/mine", response_class=HTMLResponse)
async def my_submissions_fragment(request: Request, principal: PolledUser, a: AssessmentDep, db: DbDep,
                                  submitted: int | None = None) -> Response:
    """The submission list alone: the assessment page polls it while anything is queued or running."""
    ctx = await run_in_threadpool(_assessment_context, db, a, principal.user)
    return render(request, "_my_submissions.html", principal, a=a, submitted=submitted, **ctx)


async def _uploader(slug: str, principal: ViewerDep) -> Principal:
    if principal is None:
        # The session ended while the file was chosen: after logging in, back to the assessment
        # page (not this POST-only address), which asks for the file again.
        raise LoginRequired(next=f"/assessments/{quote(slug)}?upload_lost=1", expired=True)
    return principal


@router.post("/assessments/{slug}/submit", response_class=HTMLResponse)
@body_limit(BodyKind.UPLOAD)
async def submit(request: Request, principal: Annotated[Principal, Depends(_uploader)], a: AssessmentDep,
                 db: DbDep, settings: SettingsDep, limiter: LimiterDep, flashes: FlashesDep) -> Response:
    upload = upload_from(request, a, principal.user)
    try:
        uploads.check_declared_size(upload, settings.upload_overhead_bytes)   # before the CSRF check reads the form
        await sessions.check_csrf(request, settings, principal)
        accepted = await uploads.accept_upload(upload, db, limiter, settings)
        # back to the assessment, scrolled to the new submission's live line (the fragment's anchor)
        return RedirectResponse(f"/assessments/{a.slug}?submitted={accepted.submission_id}#just-submitted",
                                status_code=303)
    except uploads.UploadRefused as exc:
        # back to the assessment page, which says why once (app.http.flash): a reload is a plain
        # GET, never the browser's "resend the form?" (the file is not re-sent either way)
        key = flashes.put(principal.user.id, {"upload_error": exc.message})
        return RedirectResponse(f"/assessments/{quote(a.slug)}?{urlencode({'shown': key})}#server-error",
                                status_code=303)


@router.get("/assessments/{slug}/submit")
async def submit_again(slug: str) -> RedirectResponse:
    """The upload's address opened again (history, a bookmark): its page, not a 405."""
    return RedirectResponse(f"/assessments/{quote(slug)}", status_code=303)


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
async def submission_page(request: Request, principal: PageUser, db: DbDep, known: AssessmentsDep,
                          flashes: FlashesDep, submission_id: int, back: str = "") -> Response:
    def load():
        with db.read_session() as s:
            sub = submissions.visible_submission(s, principal.user, submission_id)
            a = known.get(sub.assessment)
            return {"view": submissions.submission_view(s, sub, a, principal.user), "a": a}
    # the TA's way back to the list they came from (its filters and page), else the assessment's
    back = safe_next(back) if back.startswith("/ta/submissions") else ""
    # a TA's adjustment form result (app.web.staff.adjust_score), once
    return render(request, "submission.html", principal, back=back, **_shown(request, principal, flashes),
                  **await run_in_threadpool(load))


@router.post("/submissions/{submission_id}/count", response_class=HTMLResponse)
async def choose_counted(request: Request, principal: UserForm, db: DbDep, known: AssessmentsDep,
                         submission_id: int) -> Response:
    """"Make this count" (counts = "chosen"): then back to the assessment's list, which shows it."""
    try:
        a = await run_in_threadpool(choices.choose, db, known, principal.user, submission_id, utcnow())
    except choices.NotChosen as exc:
        return error_page(request, principal, 409, exc.reason)
    return RedirectResponse(f"/assessments/{quote(a.slug)}#subs-h", status_code=303)


# ---------------------------------------------------------------------------------------------
# profile: nickname, API tokens, the handout script

def _profile(request: Request, principal: Principal, db: Database, known: dict[str, Assessment], base_url: str,
             status_code: int = 200, **extra) -> Response:
    with db.read_session() as s:
        toks = accounts.tokens(s, principal.user.id)
        user = s.get(User, principal.user.id)
    shown = default_assessment(known.values())
    slug = shown.slug if shown else "hw1p1"
    layout = shown.grading_suite.layout.summary if shown else "models/ and mytorch/"
    others = [a for a in known.values() if a.slug != slug]
    return render(request, "profile.html", principal, status_code=status_code, tokens=toks, me=user,
                  base=base_url.rstrip("/"), slug=slug, layout=layout, others=others, **extra)


@router.get("/profile", response_class=HTMLResponse)
async def profile(request: Request, principal: PageUser, db: DbDep, known: AssessmentsDep, settings: SettingsDep,
                  flashes: FlashesDep) -> Response:
    return await run_in_threadpool(_profile, request, principal, db, known, settings.base_url,
                                   **_shown(request, principal, flashes))


@router.post("/profile/nickname", response_class=HTMLResponse)
async def set_nickname(request: Request, principal: UserForm, db: DbDep, flashes: FlashesDep) -> Response:
    nickname = str((await sessions.read_form(request)).get("nickname", ""))
    def save():
        with db.session() as s, s.begin():
            accounts.set_nickname(s, principal.user.id, nickname)
    try:
        await run_in_threadpool(save)
    except accounts.AccountError as exc:
        return _back_to_profile(flashes, principal, nickname_error=str(exc))
    return _back_to_profile(flashes, principal, notice="Nickname saved.")


@router.post("/profile/tokens", response_class=HTMLResponse)
async def create_token(request: Request, principal: UserForm, db: DbDep, flashes: FlashesDep) -> Response:
    name = str((await sessions.read_form(request)).get("name", "")).strip()[:100] or "token"

    def create():
        with db.session() as s, s.begin():
            return accounts.create_token(s, s.get(User, principal.user.id), name)[1]
    token = await run_in_threadpool(create)
    # The token is shown once: it waits in the server-side flash (never in the URL) for the
    # redirected GET, which takes it, so a reload shows the profile without it and posts nothing.
    return _back_to_profile(flashes, principal, "tokens-h", new_token=token, new_token_name=name)


def _back_to_profile(flashes: Flashes, principal: Principal, anchor: str = "", **shown) -> RedirectResponse:
    """303 to the profile, which shows SHOWN once (app.http.flash): a reload is a plain GET."""
    key = flashes.put(principal.user.id, shown)
    return RedirectResponse(f"/profile?{urlencode({'shown': key})}{'#' + anchor if anchor else ''}", status_code=303)


# A POST-only address opened again (history, a bookmark): the profile, not a 405.
@router.get("/profile/nickname")
@router.get("/profile/tokens")
@router.get("/profile/tokens/{token_id}/revoke")
async def profile_again() -> RedirectResponse:
    return RedirectResponse("/profile", status_code=303)


@router.post("/profile/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke_token(principal: UserForm, db: DbDep, token_id: int) -> Response:
    def revoke():
        with db.session() as s, s.begin():
            return accounts.revoke_token(s, principal.user, token_id)
    if not await run_in_threadpool(revoke):
        raise NotFound("No such token.")
    return RedirectResponse("/profile", status_code=303)


# ---------------------------------------------------------------------------------------------
# scoreboard: nicknames for students; staff get the full board (app.web.staff)

@router.get("/assessments/{slug}/scoreboard", response_class=HTMLResponse)
async def scoreboard(request: Request, principal: PageUser, a: AssessmentDep, db: DbDep) -> Response:
    if principal.user.is_staff:
        return RedirectResponse(f"/ta/assessments/{a.slug}/scoreboard", status_code=303)

    def load():
        with db.read_session() as s:
            # Built on the service's student view of the board: nicknames only.
            return standings.scoreboard(s, a, principal.user)
    rows = await run_in_threadpool(load)
    return render(request, "scoreboard.html", principal, a=a, rows=rows, me=principal.user.nickname)
