"""What every page needs: the Jinja2 environment, the error page, small formatters. Who is looking and
the guards are named dependencies (app.http.deps)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.auth.accounts import LinkState
from app.auth.sessions import Principal, csrf_token
from app.http import deps
from app.store.states import PENDING_SUBMISSION, JobState, LinkPurpose, ReportState, SubmissionStatus
from app.web.feedback import array_html, source_link
from grader.handin import ARCHIVE_SUFFIXES
from grader.result import Stopped

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
COURSE_TZ = ZoneInfo("America/New_York")   # for times not tied to an assessment (queue page)

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"], default=True),
                  trim_blocks=True, lstrip_blocks=True)


def local_time(t: datetime | str | None, tz=COURSE_TZ) -> str:
    """'Fri 2026-02-06 23:59:00 EST': the course's zone, with its abbreviation, to the second."""
    if t is None:
        return "—"
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.astimezone(tz).strftime("%a %Y-%m-%d %H:%M:%S %Z")


def until(t: datetime, now: datetime | None = None) -> str:
    """'2d 03h 04m left' (the page's script then counts down every second)."""
    left = int((t - (now or datetime.now(t.tzinfo))).total_seconds())
    if left <= 0:
        return "passed"
    d, rest = divmod(left, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    return (f"{d}d " if d else "") + f"{h:02d}h {m:02d}m {sec:02d}s left"


def duration(seconds: int) -> str:
    """An extension as '2 days 3 hours'."""
    d, rest = divmod(int(seconds), 86400)
    h, m = rest // 3600, rest % 3600 // 60
    parts = [f"{d} day{'s' * (d != 1)}" if d else "", f"{h} hour{'s' * (h != 1)}" if h else "",
             f"{m} min" if m else ""]
    return " ".join(p for p in parts if p) or "none"


def mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


env.filters["local"] = local_time
env.filters["mib"] = mib
env.filters["until"] = until
env.filters["duration"] = duration


def render(request: Request, name: str, principal: Principal | None, status_code: int = 200,
           **context) -> HTMLResponse:
    user = principal.user if principal else None
    html = env.get_template(name).render(request=request, user=user, csrf=csrf_token(principal),
                                         path=request.url.path, **context)
    return HTMLResponse(html, status_code=status_code)


ERROR_TITLES = {400: "Bad request", 401: "Log in first", 403: "Not allowed", 404: "Not found",
                405: "Not available here", 413: "Too large"}


def error_page(request: Request, principal: Principal | None, status_code: int, message: str) -> HTMLResponse:
    return render(request, "error.html", principal, status_code=status_code,
                  title=ERROR_TITLES.get(status_code, "Something went wrong"), message=message)


async def error_response(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The page a browser gets for an error (app.http.errors): a guard's, or an HTTP error's."""
    principal = None
    if status_code < 500:   # on a 500 the database may be the problem: show the page without a user
        try:
            principal = await deps.viewer(request)
        except Exception:   # noqa: BLE001 - the error page itself must not fail
            principal = None
    return error_page(request, principal, status_code, message)


def safe_next(target: str | None) -> str:
    """Only redirect to our own paths after login (no //evil.example)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def approx(seconds: float) -> str:
    """A wait as people say it: '35 s', '4 min' (app.js rounds the same way)."""
    if seconds < 90:
        return f"{max(5, int(seconds / 5 + 0.5) * 5)} s"
    return f"{int(seconds / 60 + 0.5)} min"


env.filters["approx"] = approx
env.globals["array_html"] = array_html
env.globals["source_link"] = source_link
env.globals["Stopped"] = Stopped   # why a test gave nothing to compare (grader/result.py)
env.globals["archive_suffixes"] = ARCHIVE_SUFFIXES   # the upload form takes what the API takes
# the states, from their one source (pages compare with these, never with literals)
env.globals.update(SubmissionStatus=SubmissionStatus, ReportState=ReportState, JobState=JobState,
                   PENDING_SUBMISSION=PENDING_SUBMISSION, LinkPurpose=LinkPurpose, LinkState=LinkState)
