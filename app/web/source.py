"""The handin's source in the page: its file tree, and a file with line numbers, opened at the
line where a failing test's traceback left the student's code.

Highlighting is the page's costly part (four concurrent views of a 2.8 MiB file had held the event
loop, and /healthz, for 12 s). So it runs in a worker thread, never on the event loop; Python is
highlighted up to HIGHLIGHT_BYTES and a longer text is shown plain (escaped, still numbered); a
file's HTML is kept per (handin, file, line) in a small cache; and each user may open
`source_views_per_minute` source pages a minute (429 beyond)."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, TextLexer
from starlette.concurrency import run_in_threadpool

from app.course import handin_source, submissions
from app.exceptions import NotFound
from app.http.deps import AssessmentsDep, DbDep, LimiterDep, PageUser, SettingsDep
from app.web.common import error_page, render
from grader.result import Stopped

router = APIRouter(include_in_schema=False)


def failing_locations(view: dict) -> list[dict]:
    """The places failing tests stopped in the student's code, once each:
    {"path", "line", "section", "test" (the first such test), "tests" (how many), "what" (one line:
    the exception, or the first wrong value's sentence)}."""
    places: dict[tuple, dict] = {}
    for section in view.get("sections", []):
        where = section.get("location")   # a syntax or import error: the section's one message
        if where and not section.get("passed"):
            key = (where["path"], where.get("line"))
            places.setdefault(key, {"section": section["name"], "test": "every test (it could not be imported)",
                                    "tests": 0, "what": _first_line(section.get("message")), **where})
        for test in section.get("tests", []):
            where = test.get("location")
            if test.get("passed") or not where:
                continue
            key = (where["path"], where.get("line"))
            if key not in places:
                places[key] = {"section": section["name"], "test": test["name"], "tests": 0,
                               "what": _what_failed(test), **where}
            places[key]["tests"] += 1
    # a line first (an exception's own place), then the files a wrong value came from
    return sorted(places.values(), key=lambda p: p["line"] is None)


def _first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _what_failed(test: dict) -> str:
    """One line for the code view: the exception's own line, else the first wrong value's sentence."""
    if test.get("stopped") == Stopped.TIME_LIMIT:
        return _first_line(test.get("message"))
    if test.get("error"):
        lines = [line for line in test["error"].splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""
    failed = [c for c in test.get("checks") or [] if not c.get("passed")]
    return _first_line(failed[0]["message"] if failed else test.get("message"))


def with_inline_notes(code: Markup, notes: dict[int, str]) -> Markup:
    """CODE (highlighted, one <span id="L-N"> per line) with each of NOTES ({line: text}) shown as
    a boxed line right below its line."""
    html = str(code)
    for line, text in sorted(notes.items(), reverse=True):
        start = html.find(f'<span id="L-{line}">')
        if start < 0:
            continue
        end = html.find('<span id="L-', start + 1)
        end = len(html) if end < 0 else end
        # the line's own span ends just before the next line's begins (or the code's end)
        close = html.rfind("</span>", start, end if end < len(html) else html.rfind("</pre>"))
        if close < 0:
            continue
        box = f'<span class="inline-error" role="note">{escape(text)}</span>'
        html = html[:close + len("</span>")] + box + html[close + len("</span>"):]
    return Markup(html)   # the note went through escape(); the rest is Pygments' escaped output


HIGHLIGHT_BYTES = 128 << 10   # Python longer than this is shown plain: lexing is the costly part


def highlighted(text: str, path: str, line: int | None) -> Markup:
    """TEXT as HTML (Pygments, CSS classes only): one span per line with id L-N, LINE marked."""
    lexer = PythonLexer() if path.endswith(".py") and len(text) <= HIGHLIGHT_BYTES else TextLexer()
    formatter = HtmlFormatter(linenos="inline", linespans="L", hl_lines=[line] if line else [],
                              cssclass="source", wrapcode=True)
    return Markup(highlight(text, lexer, formatter))   # Pygments escapes the code


@lru_cache(maxsize=64)
def _highlighted_file(digest: str, path: str, line: int | None, text: str) -> Markup:
    # keyed by the handin's digest too, so two handins' equal paths never share an entry
    return highlighted(text, path, line)


@router.get("/submissions/{submission_id}/source", response_class=HTMLResponse)
async def source_page(request: Request, principal: PageUser, db: DbDep, known: AssessmentsDep,
                      limiter: LimiterDep, settings: SettingsDep, submission_id: int, path: str = "",
                      line: int | None = None) -> Response:
    verdict = await run_in_threadpool(limiter.hit, f"source:{principal.user.id}", settings.source_views_per_minute)
    if not verdict.allowed:
        page = error_page(request, principal, 429, "You opened many source pages in a minute; wait a moment.")
        page.headers["Retry-After"] = str(verdict.retry_after)
        return page

    def load():
        with db.read_session() as s:
            sub = submissions.visible_submission(s, principal.user, submission_id)
            a = known.get(sub.assessment)
            if a is None:   # its assessment is no longer configured: no layout to read it with
                raise NotFound()
            view = submissions.submission_view(s, sub, a, principal.user)
            # read once per handin and kept: a view never reads the archive again while cached
            source = handin_source.CACHE.get(sub.blob_sha256, a.grading_suite.layout,
                                             lambda: submissions.blob_bytes(s, sub))
            return view, a, source, sub.blob_sha256
    view, a, source, digest = await run_in_threadpool(load)
    failing = failing_locations(view)
    if not path:   # open the first failing place, else the first Python file
        first = next((f for f in failing if source.get(f["path"])), None)
        path = first["path"] if first else next((f.path for f in source.files if f.path.endswith(".py")), "")
        if first and line is None:
            line = first["line"]
    chosen = source.get(path)
    if path and chosen is None and not source.problem:
        raise NotFound()
    code = None
    if chosen is not None and chosen.text is not None:
        code = await run_in_threadpool(_highlighted_file, digest, chosen.path, line, chosen.text)
        code = with_inline_notes(code, {f["line"]: f["what"] for f in failing
                                        if f["path"] == chosen.path and f["line"] and f["what"]})
    return render(request, "source.html", principal, view=view, a=a, source=source, tree=handin_source.tree(source.files),
                  chosen=chosen, line=line, code=code, failing=failing)
