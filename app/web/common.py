"""What every page needs: the Jinja2 environment, who is looking, CSRF checks, small formatters."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.assessments import Assessment
from app.auth import Principal, check_csrf, csrf_token, principal_for
from app.errors import ApiError

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


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def error_page(request: Request, principal: Principal | None, status_code: int, message: str) -> HTMLResponse:
    titles = {403: "Not allowed", 404: "Not found"}
    return render(request, "error.html", principal, status_code=status_code,
                  title=titles.get(status_code, "Something went wrong"), message=message)


def not_found(request: Request, principal: Principal | None) -> HTMLResponse:
    # Another student's submission looks exactly like a missing one.
    return error_page(request, principal, 404, "There is nothing here, or it is not yours to see.")


async def viewer(request: Request) -> Principal | None:
    return await principal_for(request)


async def csrf_problem(request: Request, principal: Principal) -> HTMLResponse | None:
    """None when the form carried the session's CSRF token; otherwise the page to show."""
    try:
        await check_csrf(request, principal)
    except ApiError as exc:
        return error_page(request, principal, 403, exc.message)
    return None


def assessment_or_none(request: Request, slug: str) -> Assessment | None:
    return request.app.state.assessments.get(slug)


def safe_next(target: str | None) -> str:
    """Only redirect to our own paths after login (no //evil.example)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


# ---------------------------------------------------------------------------------------------
# feedback messages: split "expected:/got:" array excerpts out so they can sit side by side

_ARRAY_LINE = re.compile(r"^\s*[\[\]\-\d.]")


def feedback_parts(message: str) -> list[dict]:
    """A test message as a list of {"text": ...} and {"expected": ..., "got": ...} parts.

    compare.py writes `...sentence...\\nexpected:\\n<array>\\ngot:\\n<array>` for each failing
    check (several checks may follow each other in one message)."""
    parts: list[dict] = []
    lines = (message or "").split("\n")
    i = 0
    text: list[str] = []
    while i < len(lines):
        if lines[i].strip() == "expected:":
            j = i + 1
            expected = []
            while j < len(lines) and lines[j].strip() != "got:":
                expected.append(lines[j])
                j += 1
            got = []
            j += 1
            while j < len(lines) and _ARRAY_LINE.match(lines[j]):
                got.append(lines[j])
                j += 1
            if text:
                parts.append({"text": "\n".join(text)})
                text = []
            parts.append({"expected": "\n".join(expected), "got": "\n".join(got)})
            i = j
            continue
        text.append(lines[i])
        i += 1
    if any(t.strip() for t in text):
        parts.append({"text": "\n".join(text)})
    return parts


env.globals["feedback_parts"] = feedback_parts
