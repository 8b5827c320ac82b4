"""TA pages for similarity reports: start one, watch its progress, read the pairs side by side, mark
them reviewed, and keep the assessment's archive of earlier handins.

The comparison never runs on the request thread: POST creates the report row and starts it in the
background (app.course.similarity_reports), then redirects to the report's page, which polls its
status. Every form posts, then redirects (a reload never resends it).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.auth.sessions import Principal
from app.course import similarity_reports as reports
from app.exceptions import NotFound
from app.http.bodylimits import BodyKind, body_limit
from app.http.deps import AssessmentDep, AssessmentsDep, DbDep, FlashesDep, StaffForm, StaffPage
from app.http.flash import Flashes
from app.http.sessions import read_form
from app.store.db import Database
from app.web.common import render
from grader.handin import HandinError
from grader.similarity import DEFAULT_THRESHOLD, Pair, Span

router = APIRouter(prefix="/ta", include_in_schema=False)
# A pair page shows at most this much source (two capped handins are 512 KiB; the same file may
# match several files of the other handin).
MAX_PAGE_SOURCE_BYTES = 1 << 20


def _segments(source: str, spans: list[Span]) -> list[tuple[str, bool]]:
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


def _side_by_side(found: reports.ReportView, pair: Pair) -> list[dict]:
    """Each matching file pair's two sources cut into highlighted pieces, until MAX_PAGE_SOURCE_BYTES
    of source are on the page (the rest: path and count only)."""
    sources = found.report.sources
    out, budget = [], MAX_PAGE_SOURCE_BYTES
    for match in pair.files:
        a = sources.get(pair.a, {}).get(match.path_a)
        b = sources.get(pair.b, {}).get(match.path_b)
        size = len(a or "") + len(b or "")
        if size > budget:
            a = b = None
        else:
            budget -= size
        out.append({"path_a": match.path_a, "path_b": match.path_b, "tokens": match.tokens,
                    "a": _segments(a, match.spans_a) if a is not None else None,
                    "b": _segments(b, match.spans_b) if b is not None else None})
    return out


@router.get("/assessments/{slug}/similarity", response_class=HTMLResponse)
async def similarity_index(request: Request, principal: StaffPage, a: AssessmentDep, db: DbDep,
                           flashes: FlashesDep) -> Response:
    rows = await run_in_threadpool(reports.latest_reports, db, a.slug)
    sources = await run_in_threadpool(reports.archive_sources, db, a.slug)
    shown = flashes.take(principal.user.id, key) if (key := request.query_params.get("shown")) else {}
    return render(request, "ta_similarity.html", principal, a=a, rows=rows, sources=sources,
                  notice=request.query_params.get("notice", "")[:300],
                  default_threshold=int(DEFAULT_THRESHOLD * 100), **shown)


def _refused(flashes: Flashes, principal: Principal, a, message: str) -> RedirectResponse:
    """A refused form: back to the similarity page, which says why once (app.http.flash), so a
    reload is a plain GET rather than the form (and its archive) sent again."""
    key = flashes.put(principal.user.id, {"error": message})
    return RedirectResponse(f"/ta/assessments/{a.slug}/similarity?{urlencode({'shown': key})}", status_code=303)


@router.post("/assessments/{slug}/similarity")
async def start_similarity(request: Request, principal: StaffForm, a: AssessmentDep, db: DbDep,
                           flashes: FlashesDep) -> Response:
    form = await read_form(request)
    try:
        percent = float(form.get("threshold") or DEFAULT_THRESHOLD * 100)
    except ValueError:
        percent = -1
    if not 0 <= percent <= 100:
        return _refused(flashes, principal, a, "The threshold is a percentage between 0 and 100.")
    report_id = await run_in_threadpool(reports.request_report, db, a, principal.user, percent / 100)
    reports.start_in_background(db, a, report_id)
    return RedirectResponse(f"/ta/similarity/{report_id}", status_code=303)


@router.post("/assessments/{slug}/similarity/archive")
@body_limit(BodyKind.SIMILARITY_ARCHIVE)
async def import_archive(request: Request, principal: StaffForm, a: AssessmentDep, db: DbDep,
                         flashes: FlashesDep) -> Response:
    """A tar or zip of earlier handins (one folder or handin archive per entry), with its source."""
    form = await read_form(request)
    upload, source = form.get("archive"), str(form.get("source") or "")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _refused(flashes, principal, a, "Choose a tar or zip of earlier handins to add to the archive.")
    data = await upload.read()
    try:
        done = await run_in_threadpool(reports.import_archive, db, a, source, data, principal.user)
    except ValueError as exc:
        return _refused(flashes, principal, a, str(exc))
    except HandinError as exc:
        return _refused(flashes, principal, a, f"That archive could not be read: {exc.message}")
    notice = f"Added {len(done.added)} handin(s) to the archive as \u201c{done.source}\u201d."
    if done.skipped:
        notice += f" Skipped {len(done.skipped)}: " + "; ".join(f"{k} ({v})" for k, v in list(done.skipped.items())[:5])
    return RedirectResponse(f"/ta/assessments/{a.slug}/similarity?notice={quote(notice)}", status_code=303)


@router.post("/assessments/{slug}/similarity/archive/remove")
async def remove_archive_source(request: Request, principal: StaffForm, a: AssessmentDep, db: DbDep) -> Response:
    source = str((await read_form(request)).get("source") or "")
    removed = await run_in_threadpool(reports.remove_archive_source, db, a.slug, source)
    notice = f"Removed {removed} handin(s) of \u201c{source}\u201d from the archive."
    return RedirectResponse(f"/ta/assessments/{a.slug}/similarity?notice={quote(notice)}", status_code=303)


async def _report(principal: StaffPage, db: DbDep, report_id: int) -> reports.ReportView:
    """The report the path names (for TAs only)."""
    found = await run_in_threadpool(reports.get_report, db, report_id)
    if found is None:
        raise NotFound()
    return found


ReportDep = Annotated[reports.ReportView, Depends(_report)]


def _people(db: Database, found: reports.ReportView) -> dict[str, str]:
    return reports.full_names(db, set(found.submissions))


@router.get("/similarity/{report_id}", response_class=HTMLResponse)
async def similarity_report(request: Request, principal: StaffPage, found: ReportDep, db: DbDep,
                            known: AssessmentsDep) -> Response:
    names = await run_in_threadpool(_people, db, found)
    reviewed = await run_in_threadpool(reports.reviews, db, found.assessment)
    return render(request, "ta_similarity_report.html", principal, r=found, names=names, reviewed=reviewed,
                  a=known.get(found.assessment))


@router.get("/similarity/{report_id}/status")
async def similarity_status(found: ReportDep) -> Response:
    """Polled by the report page while the comparison runs."""
    return JSONResponse({"state": found.state, "pending": found.state.is_pending, "done": found.done,
                         "total": found.total})


def _pair_of(found: reports.ReportView, kind: str, index: int) -> Pair:
    listed = None
    if found.report is not None and kind in ("pairs", "archive"):
        listed = found.report.pairs if kind == "pairs" else found.report.archive_pairs
    if not listed or not 0 <= index < len(listed):
        raise NotFound()
    return listed[index]


@router.get("/similarity/{report_id}/{kind}/{index}", response_class=HTMLResponse)
async def similarity_pair(request: Request, principal: StaffPage, found: ReportDep, db: DbDep, kind: str,
                          index: int) -> Response:
    pair = _pair_of(found, kind, index)
    names = await run_in_threadpool(_people, db, found)
    reviewed = (await run_in_threadpool(reports.reviews, db, found.assessment)).get((pair.a, pair.b))
    return render(request, "ta_similarity_pair.html", principal, r=found, pair=pair, kind=kind, index=index,
                  names=names, reviewed=reviewed, files=_side_by_side(found, pair))


@router.post("/similarity/{report_id}/{kind}/{index}/review")
async def review_pair(request: Request, principal: StaffForm, db: DbDep, report_id: int, kind: str,
                      index: int) -> Response:
    found = await run_in_threadpool(reports.get_report, db, report_id)
    if found is None:
        raise NotFound()
    pair = _pair_of(found, kind, index)
    reviewed = str((await read_form(request)).get("reviewed", "1")) == "1"
    await run_in_threadpool(reports.set_reviewed, db, found.assessment, pair, principal.user, reviewed)
    return RedirectResponse(f"/ta/similarity/{report_id}/{kind}/{index}", status_code=303)


# A POST-only address opened again (history, a bookmark): the page it belongs to, not a 405.
@router.get("/assessments/{slug}/similarity/archive")
@router.get("/assessments/{slug}/similarity/archive/remove")
async def similarity_again(slug: str) -> RedirectResponse:
    return RedirectResponse(f"/ta/assessments/{quote(slug)}/similarity", status_code=303)


@router.get("/similarity/{report_id}/{kind}/{index}/review")
async def review_again(report_id: int, kind: str, index: int) -> RedirectResponse:
    return RedirectResponse(f"/ta/similarity/{report_id}/{quote(kind)}/{index}", status_code=303)
