"""TA pages for similarity reports: start one, watch its progress, read the pairs side by side.

The comparison never runs on the request thread: POST creates the report row and starts it in the
background (app.course.similarity_reports), then redirects to the report's page, which polls its status.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.auth.sessions import read_form
from app.course import similarity_reports as reports
from app.web.common import (
    assessment_or_none,
    error_page,
    not_found,
    render,
    staff_form,
    staff_only,
)
from grader.similarity import DEFAULT_THRESHOLD, FileMatch

router = APIRouter(prefix="/ta", include_in_schema=False)


def _segments(source: str, spans) -> list[tuple[str, bool]]:
    """SOURCE cut into (text, copied?) pieces for highlighting."""
    pieces, at = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        start, end = max(span.start, at), min(span.end, len(source))
        if start >= end:
            continue
        if start > at:
            pieces.append((source[at:start], False))
        pieces.append((source[start:end], True))
        at = end
    if at < len(source):
        pieces.append((source[at:], False))
    return pieces


def _side_by_side(match: FileMatch) -> dict:
    return {"path": match.path, "tokens": match.tokens,
            "a": _segments(match.source_a, match.spans_a), "b": _segments(match.source_b, match.spans_b)}


@router.get("/assessments/{slug}/similarity", response_class=HTMLResponse)
async def similarity_index(request: Request, slug: str) -> Response:
    principal, stop = await staff_only(request)
    if stop:
        return stop
    a = assessment_or_none(request, slug)
    if a is None:
        return not_found(request, principal)
    rows = await run_in_threadpool(reports.latest_reports, request.app.state.db, slug)
    return render(request, "ta_similarity.html", principal, a=a, rows=rows,
                  default_threshold=int(DEFAULT_THRESHOLD * 100))


@router.post("/assessments/{slug}/similarity")
async def start_similarity(request: Request, slug: str) -> Response:
    principal, stop = await staff_form(request)
    if stop:
        return stop
    a = assessment_or_none(request, slug)
    if a is None:
        return not_found(request, principal)
    form = await read_form(request)
    try:
        percent = float(form.get("threshold") or DEFAULT_THRESHOLD * 100)
    except ValueError:
        percent = -1
    if not 0 <= percent <= 100:
        return error_page(request, principal, 400, "The threshold is a percentage between 0 and 100.")
    db = request.app.state.db
    report_id = await run_in_threadpool(reports.request_report, db, a, principal.user, percent / 100)
    reports.start_in_background(db, a, report_id)
    return RedirectResponse(f"/ta/similarity/{report_id}", status_code=303)


async def _report(request: Request, report_id: int):
    principal, stop = await staff_only(request)
    if stop:
        return None, None, stop
    found = await run_in_threadpool(reports.get_report, request.app.state.db, report_id)
    if found is None:
        return principal, None, not_found(request, principal)
    return principal, found, None


@router.get("/similarity/{report_id}", response_class=HTMLResponse)
async def similarity_report(request: Request, report_id: int) -> Response:
    principal, found, stop = await _report(request, report_id)
    if stop:
        return stop
    return render(request, "ta_similarity_report.html", principal, r=found,
                  a=assessment_or_none(request, found.assessment))


@router.get("/similarity/{report_id}/status")
async def similarity_status(request: Request, report_id: int) -> Response:
    """Polled by the report page while the comparison runs."""
    _, found, stop = await _report(request, report_id)
    if stop:
        return stop
    return JSONResponse({"state": found.state, "done": found.done, "total": found.total})


@router.get("/similarity/{report_id}/pairs/{index}", response_class=HTMLResponse)
async def similarity_pair(request: Request, report_id: int, index: int) -> Response:
    principal, found, stop = await _report(request, report_id)
    if stop:
        return stop
    if found.report is None or not 0 <= index < len(found.report.pairs):
        return not_found(request, principal)
    pair = found.report.pairs[index]
    return render(request, "ta_similarity_pair.html", principal, r=found, pair=pair, index=index,
                  files=[_side_by_side(m) for m in pair.files])
