"""Pages every signed-in user has: login, activation, home, assessment, submission, profile,
the nickname scoreboard."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.auth import accounts
from app.auth import login as login_flow
from app.auth.sessions import clear_session, foreign_origin, read_form
from app.course import choices, standings, submissions, uploads
from app.course.assessments import default_assessment
from app.exceptions import NotFound
from app.store.models import User, utcnow
from app.store.states import LinkPurpose
from app.web import flash, queries
from app.web.common import (
    assessment_or_none,
    csrf_problem,
    error_page,
    login_redirect,
    not_found,
    render,
    safe_next,
    session_ended,
    viewer,
)

router = APIRouter(include_in_schema=False)


def _db(request: Request):
    return request.app.state.db


# ---------------------------------------------------------------------------------------------
# login, logout, activation: posted before there is a session, so these two forms carry the
# login form token (app.auth.login) instead of the session's

def _anonymous_form(request: Request, name: str, status_code: int = 200, **context) -> Response:
    """The login or activation page with a fresh form token (and its cookie)."""
    token = login_flow.form_token(request)
    response = render(request, name, None, status_code=status_code, form_token=token, **context)
    return login_flow.remember_form_token(request, response, token)


def _forged(request: Request, sent: str) -> str | None:
    """Why this login/activation form is refused as cross-site, or None when it is ours."""
    if foreign_origin(request):
        return "This form was sent from another site's page. Log in on this site's own login page."
    if not login_flow.form_token_ok(request, sent):
        return "This form has expired (or your browser blocks cookies); please try again."
    return None


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/", expired: int = 0, username: str = "") -> Response:
    principal = await viewer(request)
    if principal is not None:
        # Already logged in: the form would log in someone else on top; go where they were going.
        return RedirectResponse(safe_next(next), status_code=303)
    notice = "Your session has ended; log in again to continue." if expired else None
    return _anonymous_form(request, "login.html", next=safe_next(next), notice=notice,
                           username=username[:login_flow.MAX_USERNAME])


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: str = Form(""), password: str = Form(""),
          next: str = Form("/"), csrf_token: str = Form("")) -> Response:
    if problem := _forged(request, csrf_token):
        return _anonymous_form(request, "login.html", 403, next=safe_next(next), error=problem)
    result = login_flow.attempt(request, username, password)
    shown = username[:login_flow.MAX_USERNAME]
    if result.refused:
        response = _anonymous_form(request, "login.html", 429, next=safe_next(next), username=shown,
                                   error="Too many login attempts; wait a minute and try again.")
        response.headers["Retry-After"] = str(result.refused.retry_after)
        return response
    if result.user is None:
        return _anonymous_form(request, "login.html", 401, next=safe_next(next), username=shown,
                               error="Wrong username or password.")
    response = RedirectResponse(safe_next(next), status_code=303)
    login_flow.start_session(request, response, result.user)
    return response


def _end_sessions(request: Request, user_id: int) -> None:
    with _db(request).session() as s, s.begin():
        accounts.end_sessions(s.get(User, user_id))


@router.post("/logout")
async def logout(request: Request) -> Response:
    principal = await viewer(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    if problem := await csrf_problem(request, principal):
        return problem
    # Ends this account's sessions everywhere: a copy of the cookie is worthless from now on.
    await run_in_threadpool(_end_sessions, request, principal.user.id)
    response = RedirectResponse("/login", status_code=303)
    clear_session(response)
    return response


# Activation and password-reset links: one page, worded by the link's purpose. A dead link says
# why and what to do on GET, before anyone types a password; a mistake in the form comes back as a
# redirect to the link's page (a reload never re-posts a password).
LINK_TITLES = {LinkPurpose.ACTIVATION: "Activate your account", LinkPurpose.PASSWORD_RESET: "Choose a new password"}
FORM_PROBLEMS = {"differ": "The two passwords differ.",
                 "short": "Passwords need at least 8 characters.",
                 "long": f"Passwords have at most {accounts.MAX_PASSWORD_LENGTH} characters."}


def _check_link(request: Request, token: str) -> accounts.LinkCheck:
    with _db(request).read_session() as s:
        return accounts.check_link(s, token)


def _link_page(request: Request, token: str, check: accounts.LinkCheck, status_code: int = 200,
               **context) -> Response:
    title = LINK_TITLES.get(check.purpose, "Account link")
    if check.state != accounts.LinkState.OPEN:
        problem = accounts.LINK_PROBLEMS[check.state]
        return render(request, "activate.html", None, 404 if check.state == accounts.LinkState.UNKNOWN else 410,
                      title=title, check=check, dead_end=problem[0].upper() + problem[1:] + ".",
                      used=check.state == accounts.LinkState.USED, **context)
    return _anonymous_form(request, "activate.html", status_code, title=title, check=check, token=token,
                           action=accounts.LINK_PATHS[check.purpose], **context)


@router.get("/activate", response_class=HTMLResponse)
@router.get("/reset-password", response_class=HTMLResponse)
async def activate_page(request: Request, token: str = "", problem: str = "") -> Response:
    check = await run_in_threadpool(_check_link, request, token)
    return _link_page(request, token, check, error=FORM_PROBLEMS.get(problem))


@router.post("/activate", response_class=HTMLResponse)
@router.post("/reset-password", response_class=HTMLResponse)
def activate(request: Request, token: str = Form(""), password: str = Form(""),
             password2: str = Form(""), csrf_token: str = Form("")) -> Response:
    if problem := _forged(request, csrf_token):
        # refused as cross-site: nothing was posted on the user's behalf, so nothing to redirect to
        return _link_page(request, token, _check_link(request, token), 403, error=problem)
    again = f"{request.url.path}?{urlencode({'token': token})}"
    if password != password2:
        return RedirectResponse(f"{again}&problem=differ", status_code=303)
    if len(password) < 8 or len(password) > accounts.MAX_PASSWORD_LENGTH:
        return RedirectResponse(f"{again}&problem={'short' if len(password) < 8 else 'long'}", status_code=303)
    try:
        with _db(request).session() as s, s.begin():
            user = accounts.use_link(s, token, password)
    except accounts.AccountError:
        return RedirectResponse(again, status_code=303)   # the link's page says what happened to it
    # The link proved who this is and the password is new: they are logged in, on their home page.
    notice = f"Your password is set and you are logged in as {user.username}."
    key = flash.flashes(request).put(user.id, {"notice": notice})
    response = RedirectResponse(f"/?{urlencode({'shown': key})}", status_code=303)
    login_flow.start_session(request, response, user)
    return response


# ---------------------------------------------------------------------------------------------
# home, assessment, submissions

@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request)

    def load():
        with _db(request).read_session() as s:
            return [queries.assessment_summary(s, a, principal.user)
                    for a in request.app.state.assessments.values()]
    return render(request, "home.html", principal, summaries=queries.home_order(await run_in_threadpool(load)),
                  **_shown(request, principal))


def _shown(request: Request, principal) -> dict:
    """What a form's POST left for this page to show once (app.web.flash), or nothing."""
    key = request.query_params.get("shown")
    return flash.flashes(request).take(principal.user.id, key) if key else {}


def _assessment_context(request: Request, a, user: User) -> dict:
    with _db(request).read_session() as s:
        return {"summary": queries.assessment_summary(s, a, user),
                "submissions": queries.my_submissions(s, a, user)}


@router.get("/assessments/{slug}", response_class=HTMLResponse)
async def assessment_page(request: Request, slug: str, submitted: int | None = None,
                          upload_lost: int = 0) -> Response:
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request)
    a = assessment_or_none(request, slug)
    if a is None:
        return not_found(request, principal)
    ctx = await run_in_threadpool(_assessment_context, request, a, principal.user)
    return render(request, "assessment.html", principal, a=a, submitted=submitted, upload_lost=upload_lost,
                  **ctx | _shown(request, principal))


@router.get("/assessments/{slug}/mine", response_class=HTMLResponse)
async def my_submissions_fragment(request: Request, slug: str, submitted: int | None = None) -> Response:
    """The submission list alone: the assessment page polls it while anything is queued or running."""
    principal = await viewer(request)
    if principal is None:
        return session_ended()
    a = assessment_or_none(request, slug)
    if a is None:
        return HTMLResponse("", status_code=404)
    ctx = await run_in_threadpool(_assessment_context, request, a, principal.user)
    return render(request, "_my_submissions.html", principal, a=a, submitted=submitted, **ctx)


@router.post("/assessments/{slug}/submit", response_class=HTMLResponse)
async def submit(request: Request, slug: str) -> Response:
    principal = await viewer(request)
    if principal is None:
        # The session ended while the file was chosen: after logging in, back to the assessment
        # page (not this POST-only address), which asks for the file again.
        return login_redirect(request, target=f"/assessments/{quote(slug)}?upload_lost=1", expired=True)
    a = assessment_or_none(request, slug)
    if a is None:
        return not_found(request, principal)
    upload = uploads.Upload.of(request, a, principal.user)
    try:
        uploads.check_declared_size(upload)   # before the CSRF check reads the form
        if problem := await csrf_problem(request, principal):
            return problem
        accepted = await uploads.accept_upload(request, upload)
        # back to the assessment, scrolled to the new submission's live line (the fragment's anchor)
        return RedirectResponse(f"/assessments/{slug}?submitted={accepted.submission_id}#just-submitted",
                                status_code=303)
    except uploads.UploadRefused as exc:
        # back to the assessment page, which says why once (app.web.flash): a reload is a plain
        # GET, never the browser's "resend the form?" (the file is not re-sent either way)
        key = flash.flashes(request).put(principal.user.id, {"upload_error": exc.message})
        return RedirectResponse(f"/assessments/{quote(slug)}?{urlencode({'shown': key})}#server-error",
                                status_code=303)


@router.get("/assessments/{slug}/submit")
async def submit_again(slug: str) -> RedirectResponse:
    """The upload's address opened again (history, a bookmark): its page, not a 405."""
    return RedirectResponse(f"/assessments/{quote(slug)}", status_code=303)


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
async def submission_page(request: Request, submission_id: int) -> Response:
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request)

    def load():
        with _db(request).read_session() as s:
            try:
                sub = submissions.visible_submission(s, principal.user, submission_id)
            except NotFound:
                return None
            a = request.app.state.assessments.get(sub.assessment)
            return {"view": submissions.submission_view(s, sub, a, principal.user), "a": a}
    ctx = await run_in_threadpool(load)
    if ctx is None:
        return not_found(request, principal)
    return render(request, "submission.html", principal, **ctx)


@router.post("/submissions/{submission_id}/count", response_class=HTMLResponse)
async def choose_counted(request: Request, submission_id: int) -> Response:
    """"Make this count" (counts = "chosen"): then back to the assessment's list, which shows it."""
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request)
    if problem := await csrf_problem(request, principal):
        return problem
    try:
        a = await run_in_threadpool(choices.choose, _db(request), request.app.state.assessments, principal.user,
                                    submission_id, utcnow())
    except NotFound:
        return not_found(request, principal)
    except choices.NotChosen as exc:
        return error_page(request, principal, 409, exc.reason)
    return RedirectResponse(f"/assessments/{quote(a.slug)}#subs-h", status_code=303)


# ---------------------------------------------------------------------------------------------
# profile: nickname, API tokens, the handout script

def _profile(request: Request, principal, status_code: int = 200, **extra) -> Response:
    with _db(request).read_session() as s:
        toks = accounts.tokens(s, principal.user.id)
        user = s.get(User, principal.user.id)
    assessments = request.app.state.assessments
    shown = default_assessment(assessments.values())
    slug = shown.slug if shown else "hw1p1"
    layout = shown.grading_suite.layout.summary if shown else "models/ and mytorch/"
    others = [a for a in assessments.values() if a.slug != slug]
    return render(request, "profile.html", principal, status_code=status_code, tokens=toks, me=user,
                  base=request.app.state.settings.base_url.rstrip("/"), slug=slug, layout=layout, others=others, **extra)


@router.get("/profile", response_class=HTMLResponse)
async def profile(request: Request) -> Response:
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request)
    return await run_in_threadpool(_profile, request, principal, **_shown(request, principal))


@router.post("/profile/nickname", response_class=HTMLResponse)
async def set_nickname(request: Request) -> Response:
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request, target="/profile")
    if problem := await csrf_problem(request, principal):
        return problem
    nickname = str((await read_form(request)).get("nickname", ""))

    def save():
        with _db(request).session() as s, s.begin():
            accounts.set_nickname(s, principal.user.id, nickname)
    try:
        await run_in_threadpool(save)
    except accounts.AccountError as exc:
        return _back_to_profile(request, principal, nickname_error=str(exc))
    return _back_to_profile(request, principal, notice="Nickname saved.")


@router.post("/profile/tokens", response_class=HTMLResponse)
async def create_token(request: Request) -> Response:
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request, target="/profile")
    if problem := await csrf_problem(request, principal):
        return problem
    name = str((await read_form(request)).get("name", "")).strip()[:100] or "token"

    def create():
        with _db(request).session() as s, s.begin():
            return accounts.create_token(s, s.get(User, principal.user.id), name)[1]
    token = await run_in_threadpool(create)
    # The token is shown once: it waits in the server-side flash (never in the URL) for the
    # redirected GET, which takes it, so a reload shows the profile without it and posts nothing.
    return _back_to_profile(request, principal, "tokens-h", new_token=token, new_token_name=name)


def _back_to_profile(request: Request, principal, anchor: str = "", **shown) -> RedirectResponse:
    """303 to the profile, which shows SHOWN once (app.web.flash): a reload is a plain GET."""
    key = flash.flashes(request).put(principal.user.id, shown)
    return RedirectResponse(f"/profile?{urlencode({'shown': key})}{'#' + anchor if anchor else ''}", status_code=303)


# A POST-only address opened again (history, a bookmark): the profile, not a 405.
@router.get("/profile/nickname")
@router.get("/profile/tokens")
@router.get("/profile/tokens/{token_id}/revoke")
async def profile_again() -> RedirectResponse:
    return RedirectResponse("/profile", status_code=303)


@router.post("/profile/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke_token(request: Request, token_id: int) -> Response:
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request)
    if problem := await csrf_problem(request, principal):
        return problem

    def revoke():
        with _db(request).session() as s, s.begin():
            return accounts.revoke_token(s, principal.user, token_id)
    if not await run_in_threadpool(revoke):
        return error_page(request, principal, 404, "No such token.")
    return RedirectResponse("/profile", status_code=303)


# ---------------------------------------------------------------------------------------------
# scoreboard: nicknames for students; staff get the full board (app.web.staff)

@router.get("/assessments/{slug}/scoreboard", response_class=HTMLResponse)
async def scoreboard(request: Request, slug: str) -> Response:
    principal = await viewer(request)
    if principal is None:
        return login_redirect(request)
    a = assessment_or_none(request, slug)
    if a is None:
        return not_found(request, principal)
    if principal.user.is_staff:
        return RedirectResponse(f"/ta/assessments/{slug}/scoreboard", status_code=303)

    def load():
        with _db(request).read_session() as s:
            # Built on the service's student view of the board: nicknames only.
            return standings.scoreboard(s, a, principal.user)
    rows = await run_in_threadpool(load)
    return render(request, "scoreboard.html", principal, a=a, rows=rows, me=principal.user.nickname)
