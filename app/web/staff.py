"""TA pages under /ta: scoreboard, all submissions and regrades, queue health, students."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.auth import accounts, admin
from app.auth.sessions import Principal
from app.course import adjustments, extensions, failures, handin_zip, regrades
from app.course.assessments import Assessment, default_assessment
from app.exceptions import Forbidden, NotFound
from app.grading import queue
from app.grading.supervisor import describe_workers
from app.grading.worker import work_dir_health
from app.http.bodylimits import BodyKind, body_limit
from app.http.deps import (
    AssessmentDep,
    AssessmentsDep,
    DbDep,
    FlashesDep,
    PolledStaff,
    SettingsDep,
    StaffForm,
    StaffPage,
    WorkersDep,
)
from app.http.flash import Flashes
from app.http.sessions import read_form
from app.store.db import Database
from app.store.models import utcnow
from app.store.states import LinkPurpose
from app.web import queries
from app.web.common import render

router = APIRouter(prefix="/ta", include_in_schema=False)

SORT_KEYS = {"name": lambda r: r["display_name"].lower(), "username": lambda r: r["username"].lower(),
             "total": lambda r: r["total"], "raw": lambda r: r["raw"], "bonus": lambda r: r["bonus"],
             "penalty": lambda r: r["penalty"], "submissions": lambda r: r["submissions"],
             "last": lambda r: r["last"].timestamp() if r["last"] else 0}


def _default_slug(known: dict[str, Assessment]) -> str:
    a = default_assessment(known.values())
    return a.slug if a else ""


def _chosen(known: dict[str, Assessment], slug: str) -> Assessment:
    """The assessment a query string names (the default one when it names none)."""
    a = known.get(slug or _default_slug(known))
    if a is None:
        raise NotFound(f"There is no assessment called {slug!r}.")
    return a


# ---------------------------------------------------------------------------------------------
# scoreboard

@router.get("/assessments/{slug}/scoreboard", response_class=HTMLResponse)
async def scoreboard(request: Request, principal: StaffPage, a: AssessmentDep, db: DbDep, sort: str = "total",
                     dir: str = "desc", q: str = "") -> Response:
    def load():
        with db.read_session() as s:
            return queries.staff_scoreboard(s, a)
    rows = await run_in_threadpool(load)
    rates = queries.pass_rates(rows, a)
    top = a.max_score + a.early_bonus
    bins = queries.histogram([r["total"] for r in rows if r["graded"]], top)
    if q:
        needle = q.lower()
        rows = [r for r in rows if needle in r["display_name"].lower() or needle in r["username"].lower()]
    # Any column sorts: the fixed ones above, or a section by its name.
    key = SORT_KEYS.get(sort) or (lambda r: r["sections"].get(sort, -1))
    if sort not in SORT_KEYS and sort not in a.sections:
        sort, key = "total", SORT_KEYS["total"]
    rows.sort(key=key, reverse=(dir != "asc"))
    return render(request, "ta_scoreboard.html", principal, a=a, rows=rows, rates=rates, bins=bins,
                  sort=sort, dir="asc" if dir == "asc" else "desc", q=q,
                  histogram_max=max([b["n"] for b in bins] + [1]))


# ---------------------------------------------------------------------------------------------
# submissions and regrades

@router.get("/submissions", response_class=HTMLResponse)
async def submissions(request: Request, principal: StaffPage, db: DbDep, known: AssessmentsDep,
                      assessment: str = "", student: str = "", status: str = "", late: str = "",
                      errors: str = "", page: int = 1) -> Response:
    a = _chosen(known, assessment)

    def load():
        with db.read_session() as s:
            return (queries.staff_submissions(s, a, student.strip(), status, late, bool(errors), page),
                    queries.regrade_progress(s, a.slug))
    (rows, total), progress = await run_in_threadpool(load)
    filters = {"assessment": a.slug, "student": student, "status": status, "late": late, "errors": errors}
    return render(request, "ta_submissions.html", principal, a=a, rows=rows, progress=progress,
                  filters=filters, pager=queries.pages(total, page), query=_query(filters),
                  assessments=known.values())


def _query(filters: dict) -> str:
    """The filters as a query string for the pager's links (page= is appended)."""
    return urlencode({k: v for k, v in filters.items() if v})


@router.get("/assessments/{slug}/regrades", response_class=HTMLResponse)
async def regrade_progress_fragment(request: Request, principal: PolledStaff, a: AssessmentDep, db: DbDep) -> Response:
    """Polled by the submissions page while regrades are waiting."""
    def load():
        with db.read_session() as s:
            return queries.regrade_progress(s, a.slug)
    return render(request, "_regrade_progress.html", principal, progress=await run_in_threadpool(load),
                  slug=a.slug)


@router.post("/submissions/{submission_id}/regrade")
async def regrade_one(request: Request, principal: StaffForm, db: DbDep, settings: SettingsDep,
                      submission_id: int) -> Response:
    await run_in_threadpool(regrades.regrade_one, db, submission_id, settings.max_attempts)
    back = str((await read_form(request)).get("back", "")) or f"/submissions/{submission_id}"
    return RedirectResponse(back if back.startswith("/") and not back.startswith("//") else "/", 303)


@router.post("/assessments/{slug}/regrade")
async def regrade_all(principal: StaffForm, a: AssessmentDep, db: DbDep, settings: SettingsDep) -> Response:
    await run_in_threadpool(regrades.regrade_all, db, a.slug, settings.max_attempts)
    return RedirectResponse(f"/ta/submissions?assessment={a.slug}", status_code=303)


@router.post("/assessments/{slug}/submissions/{submission_id}/adjustment")
async def adjust_score(request: Request, principal: StaffForm, a: AssessmentDep, db: DbDep, flashes: FlashesDep,
                       submission_id: int) -> Response:
    """A points adjustment from the submission page's form; back there (post, redirect, get) with
    what happened shown once. Another assessment's submission is a 404 (adjustments.adjust)."""
    form = await read_form(request)
    back = str(form.get("back", ""))   # the list the TA came from, kept for the page's way back
    try:
        points = int(str(form.get("points", "")).strip() or "x")
    except ValueError:
        return _back_to_submission(flashes, principal, submission_id, back,
                                   error="Points are a whole number, e.g. 2 or -3.")
    try:
        await run_in_threadpool(adjustments.adjust, db, a, submission_id, principal.user, points,
                                str(form.get("reason", "")), str(form.get("comment", "")))
    except adjustments.AdjustmentRefused as exc:
        return _back_to_submission(flashes, principal, submission_id, back, error=exc.reason)
    notice = f"Adjustment of {points:+d} point(s) saved." if points else "Adjustment withdrawn."
    return _back_to_submission(flashes, principal, submission_id, back, notice=notice)


def _back_to_submission(flashes: Flashes, principal: Principal, submission_id: int, back: str,
                        **shown) -> RedirectResponse:
    query = {"shown": flashes.put(principal.user.id, shown)}
    if back.startswith("/ta/submissions"):
        query["back"] = back
    return RedirectResponse(f"/submissions/{submission_id}?{urlencode(query)}#adjust", status_code=303)


@router.get("/assessments/{slug}/submissions/{submission_id}/adjustment")
async def adjust_score_again(submission_id: int) -> RedirectResponse:
    return RedirectResponse(f"/submissions/{submission_id}", status_code=303)


# ---------------------------------------------------------------------------------------------
# queue health

@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, principal: StaffPage, db: DbDep, settings: SettingsDep,
                     server: WorkersDep) -> Response:
    def load():
        with db.read_session() as s:
            return queue.health(s), queries.queue_details(s, settings.lease_seconds), work_dir_health(settings)
    health, details, work = await run_in_threadpool(load)
    return render(request, "ta_queue.html", principal, health=health, details=details, work=work,
                  server_workers=describe_workers(server), lease_seconds=settings.lease_seconds, now=utcnow())


# ---------------------------------------------------------------------------------------------
# students: roster import, activation links, extensions, roles

def _students(request: Request, principal: Principal, db: Database, known: dict[str, Assessment],
              flashes: Flashes, status_code: int = 200, slug: str = "", **extra) -> Response:
    if shown := request.query_params.get("shown"):   # a form's result, once (app.http.flash)
        extra = flashes.take(principal.user.id, shown) | extra
    slug = slug or str(request.query_params.get("assessment") or _default_slug(known))
    search = str(request.query_params.get("q", "")).strip()
    try:
        page = int(request.query_params.get("page", 1))
    except ValueError:
        page = 1
    with db.read_session() as s:
        people = queries.roster(s, slug, known.get(slug), search)
    pager = queries.pages(len(people), page)
    start = pager["first_row"] - 1 if people else 0
    return render(request, "ta_students.html", principal, status_code=status_code,
                  people=people[start:start + queries.PAGE_SIZE], pager=pager, slug=slug, q=search,
                  a=known.get(slug), query=_query({"assessment": slug, "q": search}),
                  assessments=known.values(), **extra)


@router.get("/students", response_class=HTMLResponse)
async def students(request: Request, principal: StaffPage, db: DbDep, known: AssessmentsDep,
                   flashes: FlashesDep) -> Response:
    return await run_in_threadpool(_students, request, principal, db, known, flashes)


@router.post("/students/import", response_class=HTMLResponse)
@body_limit(BodyKind.ROSTER)
async def import_roster(request: Request, principal: StaffForm, db: DbDep, settings: SettingsDep,
                        flashes: FlashesDep) -> Response:
    upload = (await read_form(request)).get("roster")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _after_post(flashes, principal, error="Choose a CSV file to import.")
    cap = settings.roster_max_bytes   # the body limit adds only the multipart framing
    data = await upload.read(cap + 1)
    if len(data) > cap:
        return _after_post(flashes, principal, error=f"The roster is larger than {cap} bytes; split it.")

    def run():
        # admin.import_roster reads a file path (it is what `grader roster import` uses).
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "roster.csv"
            path.write_bytes(data)
            return admin.import_roster(db, path, settings.base_url, principal.user)
    try:
        links = await run_in_threadpool(run)
    except (UnicodeDecodeError, ValueError) as exc:
        return _after_post(flashes, principal, error=f"That file could not be read as a CSV roster ({exc}).")
    notice = f"Imported {len(links)} new student(s)." if links else \
        "No new students: every username in the file already exists (or the file has no username column)."
    return _after_post(flashes, principal, links=links, notice=notice)


@router.post("/students/{username}/activation", response_class=HTMLResponse)
async def new_activation(principal: StaffForm, db: DbDep, settings: SettingsDep, flashes: FlashesDep,
                         username: str) -> Response:
    return await _issue_link(principal, db, settings, flashes, username, LinkPurpose.ACTIVATION)


@router.post("/students/{username}/password-reset", response_class=HTMLResponse)
async def new_password_reset(principal: StaffForm, db: DbDep, settings: SettingsDep, flashes: FlashesDep,
                             username: str) -> Response:
    """No mail server: the TA copies the link to the student. One-time, expiring, stored hashed,
    recorded with who issued it (store.models.AccountLink)."""
    return await _issue_link(principal, db, settings, flashes, username, LinkPurpose.PASSWORD_RESET)


async def _issue_link(principal: Principal, db: Database, settings, flashes: Flashes, username: str,
                      purpose: LinkPurpose) -> Response:
    make = accounts.activation_link if purpose == LinkPurpose.ACTIVATION else accounts.password_reset_link

    def issue():
        with db.session() as s, s.begin():
            return make(s, principal.user, username, settings.base_url)
    try:
        link = await run_in_threadpool(issue)
    except accounts.NotAllowed:
        raise Forbidden("A TA makes links for students only; an admin for staff too.") from None
    except accounts.AccountError as exc:
        return _after_post(flashes, principal, error=str(exc))
    if link is None:
        raise NotFound()
    if purpose == LinkPurpose.ACTIVATION:
        notice = f"A new one-time activation link for {username} (shown once; earlier links stop working)."
    else:
        notice = (f"A one-time password reset link for {username}, valid for "
                  f"{accounts.RESET_LINK_LIFETIME.total_seconds() / 3600:g} hours (shown once). Copy it to them.")
    # the link is a secret: it rides the server-side flash, never the redirect's URL (app.http.flash)
    return _after_post(flashes, principal, links=[(username, link)], link_purpose=purpose, notice=notice)


@router.post("/students/activation-links.csv")
async def activation_links_csv(principal: StaffForm, db: DbDep, settings: SettingsDep) -> Response:
    """Every not-yet-activated account's activation link as a CSV (username, name, email, link) for
    a mail merge. The stored hashes cannot give back links sent earlier, so these are fresh ones
    and replace them. A POST (it makes links) that answers with a download: the page stays put."""
    def issue():
        with db.session() as s, s.begin():
            rows = accounts.pending_activation_links(s, principal.user, settings.base_url)
            return [(u.username, u.display_name, u.email, link) for u, link in rows]
    rows = await run_in_threadpool(issue)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", "name", "email", "activation_link"])
    writer.writerows([_cell(x) for x in row] for row in rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="activation-links.csv"',
                             "Cache-Control": "no-store"})


def _cell(value: str) -> str:
    """A spreadsheet never runs a cell as a formula (names and emails come from a roster file)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@router.post("/students/{username}/role", response_class=HTMLResponse)
async def change_role(request: Request, principal: StaffForm, db: DbDep, flashes: FlashesDep,
                      username: str) -> Response:
    role = str((await read_form(request)).get("role", ""))

    def change():
        with db.session() as s, s.begin():
            accounts.set_role(s, principal.user, username, role)
    try:
        await run_in_threadpool(change)
    except accounts.AccountError as exc:
        return _after_post(flashes, principal, error=str(exc))
    return _after_post(flashes, principal, notice=f"{username} is now {role}.")


@router.post("/students/{username}/extension", response_class=HTMLResponse)
async def set_extension(request: Request, principal: StaffForm, db: DbDep, known: AssessmentsDep,
                        flashes: FlashesDep, username: str) -> Response:
    form = await read_form(request)
    slug = str(form.get("assessment", ""))
    if slug not in known:
        raise NotFound(f"There is no assessment called {slug!r}.")
    try:
        days, hours = float(form.get("days") or 0), float(form.get("hours") or 0)
    except ValueError:
        return _after_post(flashes, principal, slug=slug, error="Days and hours are numbers.")
    seconds = int(days * 86400 + hours * 3600)
    try:
        await run_in_threadpool(extensions.set_extension, db, slug, username, seconds, principal.user)
    except accounts.NotAllowed:
        raise Forbidden("A TA grants extensions to students only.") from None
    what = f"an extension of {days:g} day(s) {hours:g} hour(s)" if seconds > 0 else "no extension"
    return _after_post(flashes, principal, slug=slug, notice=f"{username} now has {what} on {slug}.")


def _after_post(flashes: Flashes, principal: Principal, slug: str = "", **shown) -> RedirectResponse:
    """303 to the Students page, which shows SHOWN once: a reload is a plain GET, never a resend."""
    key = flashes.put(principal.user.id, shown)
    query = {"assessment": slug} if slug else {}
    return RedirectResponse(f"/ta/students?{_query(query | {'shown': key})}", status_code=303)


# A POST-only address opened again (history, a bookmark): the page it belongs to, not a 405.
@router.get("/students/import")
@router.get("/students/activation-links.csv")
@router.get("/students/{username}/extension")
@router.get("/students/{username}/role")
@router.get("/students/{username}/activation")
@router.get("/students/{username}/password-reset")
async def students_again() -> RedirectResponse:
    return RedirectResponse("/ta/students", status_code=303)


@router.get("/submissions/{submission_id}/regrade")
async def regrade_one_again(submission_id: int) -> RedirectResponse:
    return RedirectResponse(f"/submissions/{submission_id}", status_code=303)


@router.get("/assessments/{slug}/regrade")
async def regrade_all_again(slug: str) -> RedirectResponse:
    return RedirectResponse(f"/ta/submissions?{_query({'assessment': slug})}", status_code=303)


# ---------------------------------------------------------------------------------------------
# failures across the class

@router.get("/assessments/{slug}/failures", response_class=HTMLResponse)
async def failures_page(request: Request, principal: StaffPage, a: AssessmentDep, db: DbDep,
                        section: str = "") -> Response:
    """Grouped by the cause of each student's first failure, or, with ?section=, of that section's."""
    def load():
        with db.read_session() as s:
            return failures.class_failures(s, a, section or None)
    return render(request, "ta_failures.html", principal, a=a, r=await run_in_threadpool(load))


# ---------------------------------------------------------------------------------------------
# every counted handin as one zip

def _counted_handins(db: Database, a: Assessment) -> list[handin_zip.CountedHandin]:
    with db.read_session() as s:
        return handin_zip.counted_handins(s, a)


@router.get("/assessments/{slug}/handins", response_class=HTMLResponse)
async def handins_page(request: Request, principal: StaffPage, a: AssessmentDep, db: DbDep) -> Response:
    """What the zip will hold (how many handins, how large) before it is downloaded: its length is
    not known in advance, so this is the progress a browser cannot show."""
    handins = await run_in_threadpool(_counted_handins, db, a)
    return render(request, "ta_handins.html", principal, a=a, handins=handins,
                  total_bytes=sum(h.size for h in handins))


@router.get("/assessments/{slug}/handins.zip")
async def handins_zip(principal: StaffPage, a: AssessmentDep, db: DbDep) -> Response:
    """One folder per student (their counted handin's graded files) and manifest.csv, streamed."""
    handins = await run_in_threadpool(_counted_handins, db, a)
    name = f"{a.slug}-handins-{len(handins)}-students.zip"
    return StreamingResponse(handin_zip.stream_zip(db, a, handins), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "X-Handin-Count": str(len(handins)),
                                      "X-Handin-Archive-Bytes": str(sum(h.size for h in handins))})
