"""The `grader` console script: the service's commands (serve, worker, db, user, roster, token)
next to the grading core's `grade` (grader/cli.py), which knows nothing of the service."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from grader.cli import add_grade_command


def _settings(args, **overrides):
    from app.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "unsafe_no_sandbox", False):
        values["unsafe_no_sandbox"] = True
    return Settings(**values)


def _db(settings):
    from app.store.db import Database
    return Database(settings.db_url)


def cmd_db_upgrade(args) -> int:
    from app.store.db import upgrade

    settings = _settings(args)
    upgrade(settings.db_url)
    print(f"database is up to date ({settings.db_url.split('@')[-1]})")
    return 0


def cmd_serve(args) -> int:
    from app.http.server import public_settings, run
    from app.main import create_app
    from app.store.db import SchemaOutOfDate, upgrade

    settings = public_settings(_settings(args, demo=True if args.demo else None), args.host, args.port)
    if args.demo:
        upgrade(settings.db_url)   # a demo starts from nothing: create the schema
    workers = settings.workers if args.workers is None else args.workers
    try:
        app = create_app(settings, workers=workers)
    except SchemaOutOfDate as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 1
    if workers:
        from app.grading.supervisor import Supervisor, WorkerRuntime
        from app.grading.worker import SandboxRefused
        supervisor = Supervisor(app.state.db, settings, workers, runtime=WorkerRuntime.PROCESSES)
        try:
            supervisor.prepare()
        except SandboxRefused as exc:
            print(f"grader: no safe sandbox is available here ({exc}); refusing to grade student code.\n"
                  "  Run `grader serve --workers 0` for a web-only tier, or --unsafe-no-sandbox "
                  "(development only).", file=sys.stderr)
            return 3
        app.state.workers = supervisor
        if settings.unsafe_no_sandbox:
            print("WARNING: GRADER_UNSAFE_NO_SANDBOX: student code runs WITHOUT a sandbox.", file=sys.stderr)
    if args.demo:
        from app.auth.admin import setup_demo
        from app.course.assessments import default_assessment
        creds = setup_demo(app.state.db)
        url = f"http://{args.host}:{args.port}"
        # the assessment the served create_tarball.sh defaults to (the same rule)
        slug = default_assessment(app.state.assessments.values()).slug
        print(f"""
Demo course at {url}  (API docs: {url}/docs)
  TA login:       ta / {creds['ta']}
  Student login:  student / {creds['student']}   (and student2 / {creds['student2']})
  Student token:  {creds['token']}
Submit from a handout folder:
  curl -s {url}/handout/create_tarball.sh -o create_tarball.sh
  GRADER_TOKEN={creds['token']} bash create_tarball.sh
or directly:
  curl -H "Authorization: Bearer {creds['token']}" -F handin=@handin.tar \\
       "{url}/api/v1/assessments/{slug}/submissions?wait=120"
""", flush=True)
    # The service's own lines (start-up, one per grade, shutdown) show whatever uvicorn's level.
    logging.getLogger("app").setLevel(logging.INFO)
    app.state.address = f"http://{args.host}:{args.port}"
    run(app, settings, args.host, args.port, args.log_level)   # with bounds on slow clients (app/http/server.py)
    return 0


def cmd_worker(args) -> int:
    import signal

    from app.grading import queue
    from app.grading.supervisor import Supervisor, WorkerRuntime
    from app.grading.worker import SandboxRefused
    from app.store.db import PostgresDoorbell, SchemaOutOfDate, check_schema

    settings = _settings(args)
    db = _db(settings)
    try:
        check_schema(db.engine)
    except SchemaOutOfDate as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 1
    # On Postgres each worker LISTENs for queued jobs; on SQLite it polls (no web process here)
    listen = None if db.is_sqlite else (lambda: PostgresDoorbell(db, queue.JOBS_CHANNEL))
    supervisor = Supervisor(db, settings, args.count, runtime=WorkerRuntime.THREADS,
                            first_index=args.first_index, doorbell=listen)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop.set())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stop.set())
    try:
        supervisor.prepare()
    except SandboxRefused as exc:
        print(f"grader: no safe sandbox is available here ({exc}); refusing to grade.", file=sys.stderr)
        return 3
    supervisor.start()
    print(f"grader worker: {args.count} worker(s) on {settings.db_url.split('@')[-1]}", flush=True)
    supervisor.wait()
    supervisor.close(timeout=60)
    return 0


def cmd_user_add(args) -> int:
    from app.auth.accounts import AccountError
    from app.auth.admin import add_user

    try:
        add_user(_db(_settings(args)), args.name, args.role, args.password, args.display_name or "",
                 args.email or "")
    except AccountError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 1
    print(f"added {args.role} {args.name}" + ("" if args.password else " (no password yet)"))
    return 0


def cmd_roster_import(args) -> int:
    from app.auth.admin import import_roster

    settings = _settings(args)
    links = import_roster(_db(settings), Path(args.csv), args.base_url or settings.base_url)
    for username, link in links:
        print(f"{username}\t{link}")
    print(f"{len(links)} new student(s); each link works once.", file=sys.stderr)
    return 0


def cmd_token_create(args) -> int:
    from app.auth.accounts import AccountError
    from app.auth.admin import create_token

    try:
        print(create_token(_db(_settings(args)), args.name, args.token_name))
    except AccountError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_similarity(args) -> int:
    """Compare every student's counted handin with every other's, store the report (TAs read it at
    /ta/similarity/ID) and print the pairs."""
    from app.course import similarity_reports as reports
    from app.main import load_assessments
    from app.store.states import ReportState
    from grader.similarity import DEFAULT_THRESHOLD

    settings = _settings(args, demo=args.slug.endswith("-demo") or None)
    assessment = load_assessments(settings).get(args.slug)
    if assessment is None:
        print(f"grader: no assessment {args.slug!r}", file=sys.stderr)
        return 2
    db = _db(settings)
    percent = DEFAULT_THRESHOLD * 100 if args.threshold is None else args.threshold
    report_id = reports.request_report(db, assessment, None, percent / 100)

    def progress(done: int, total: int) -> None:
        print(f"\rcomparing: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    final = reports.run_report(db, assessment, report_id, on_progress=progress)
    if final.state != ReportState.DONE:
        print(f"grader: the report failed: {final.error}", file=sys.stderr)
        return 3
    rep = final.report
    print(f"{rep.handins} handins, {rep.candidate_pairs} pairs share code, {len(rep.pairs)} at or above "
          f"{percent:g}% ({rep.seconds:.1f} s); report #{report_id}: "
          f"{settings.base_url.rstrip('/')}/ta/similarity/{report_id}")
    for pair in rep.pairs + rep.archive_pairs:
        where = "archive" if pair.archive else "class"
        print(f"{pair.a}\t{pair.b}\t{pair.similarity_a:.0%}\t{pair.similarity_b:.0%}\t{pair.tokens} tokens\t"
              f"{where}\t{', '.join(pair.paths)}")
    return 0


def cmd_similarity_archive(args) -> int:
    """Add earlier handins or public solutions (a folder or a tar/zip of handins) to an assessment's
    similarity archive under a source label; or list / remove sources."""
    from app.course import similarity_reports as reports
    from app.main import load_assessments
    from grader.handin import HandinError

    settings = _settings(args, demo=args.slug.endswith("-demo") or None)
    assessment = load_assessments(settings).get(args.slug)
    if assessment is None:
        print(f"grader: no assessment {args.slug!r}", file=sys.stderr)
        return 2
    db = _db(settings)
    if args.remove:
        print(f"removed {reports.remove_archive_source(db, args.slug, args.remove)} handin(s) of {args.remove!r}")
        return 0
    if args.path is None:
        for src in reports.archive_sources(db, args.slug):
            print(f"{src.source}\t{src.entries} handins\tadded {src.added_at:%Y-%m-%d %H:%M}")
        return 0
    path = Path(args.path)
    if not path.exists():
        print(f"grader: no such file or folder: {path}", file=sys.stderr)
        return 2
    try:
        done = reports.import_archive(db, assessment, args.source or path.name, path, None)
    except (ValueError, HandinError) as exc:
        print(f"grader: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    print(f"added {len(done.added)} handin(s) to the archive as {done.source!r}")
    for name, why in done.skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    return 0


def _add_service_commands(sub) -> None:
    s = sub.add_parser("serve", help="run the web service and its grading worker processes",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Serve the pages and the JSON API (docs at /docs) with grading "
                                   "workers as child processes of this server. Other settings are GRADER_* environment variables "
                                   "(app/settings.py), e.g. DATABASE_URL; SQLite in ./data by default.")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8000, help="port to listen on")
    s.add_argument("--workers", type=int, default=None,
                   help="grading worker processes started by this server; 0 for a web-only tier; None means "
                        "GRADER_WORKERS, else one per core")
    s.add_argument("--demo", action="store_true",
                   help="create the schema and a demo course dated around now, and print its logins and a token")
    s.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="grade WITHOUT isolation (development only; recorded on every result)")
    s.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (info adds one line per request); the service's start-up, "
                        "per-grade and shutdown lines are always shown")
    s.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="run grading workers alone (Postgres: any number, any machine)")
    w.add_argument("--count", type=int, default=1)
    w.add_argument("--first-index", type=int, default=0, help="sandbox slots start at this worker index")
    w.add_argument("--unsafe-no-sandbox", action="store_true")
    w.set_defaults(func=cmd_worker)

    d = sub.add_parser("db", help="database maintenance")
    dsub = d.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="apply the migrations").set_defaults(func=cmd_db_upgrade)

    u = sub.add_parser("user", help="accounts")
    usub = u.add_subparsers(dest="user_command", required=True)
    ua = usub.add_parser("add", help="add a user")
    ua.add_argument("name")
    ua.add_argument("--role", choices=["student", "ta", "admin"], default="student")
    ua.add_argument("--password")
    ua.add_argument("--display-name")
    ua.add_argument("--email")
    ua.set_defaults(func=cmd_user_add)

    r = sub.add_parser("roster", help="class roster")
    rsub = r.add_subparsers(dest="roster_command", required=True)
    ri = rsub.add_parser("import", help="create students from a CSV (username[,name,email])")
    ri.add_argument("csv")
    ri.add_argument("--base-url", help="where the activation links point (default GRADER_BASE_URL)")
    ri.set_defaults(func=cmd_roster_import)

    t = sub.add_parser("token", help="API tokens")
    tsub = t.add_subparsers(dest="token_command", required=True)
    tc = tsub.add_parser("create", help="print a new API token for a user")
    tc.add_argument("name", help="the user's name")
    tc.add_argument("--token-name", default="cli")
    tc.set_defaults(func=cmd_token_create)


    m = sub.add_parser("similarity", help="compare every student's counted handin with every other's "
                                          "(MOSS-style; the report is also shown to TAs)")
    m.add_argument("slug", help="the assessment, e.g. hw1p1")
    m.add_argument("--threshold", type=float, default=None,
                   help="list pairs at or above this similarity, in percent (default: the one TAs' "
                        "reports use, grader.similarity.DEFAULT_THRESHOLD)")
    m.set_defaults(func=cmd_similarity)
    m = sub.add_parser("similarity-archive", help="add earlier semesters' handins or public solutions (a folder "
                                                  "or a tar/zip of handins) to an assessment's similarity archive")
    m.add_argument("slug", help="the assessment, e.g. hw1p1")
    m.add_argument("path", nargs="?", help="a folder or archive holding one handin per entry; "
                                           "without it, list the archive's sources")
    m.add_argument("--source", help="where the handins come from, e.g. F24 (default: the path's name)")
    m.add_argument("--remove", metavar="SOURCE", help="remove every handin of this source")
    m.set_defaults(func=cmd_similarity_archive)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="MyTorch grading service")
    sub = parser.add_subparsers(dest="command", required=True)
    add_grade_command(sub)
    _add_service_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
