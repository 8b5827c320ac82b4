"""The FastAPI application: `create_app(settings)`; workers run in its lifespan when asked."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.auth.ratelimit import RateLimiter
from app.course.assessments import Assessment, demo_copy, load_dir
from app.grading.supervisor import Supervisor, WorkerRuntime
from app.http import errors, headers
from app.http.bodylimits import RequestBodyLimits
from app.http.flash import Flashes
from app.settings import Settings
from app.store.db import Database, check_schema

log = logging.getLogger(__name__)


def load_assessments(settings: Settings) -> dict[str, Assessment]:
    found = load_dir(settings.assessments_dir)
    if settings.demo:
        for a in list(found.values()):
            copy = demo_copy(a)
            found[copy.slug] = copy
    return found


def _sandbox_name(workers: Supervisor | None, settings: Settings) -> str:
    if workers is None or not workers.sandbox_name:
        return "none (web only)"
    name = workers.sandbox_name
    return f"{name} (UNSAFE: no isolation)" if settings.unsafe_no_sandbox else name


def create_app(settings: Settings | None = None, *, workers: int | None = None,
               db: Database | None = None) -> FastAPI:
    """WORKERS grading threads started with the app (tests; default none). `grader serve` instead
    sets app.state.workers to its prepared worker processes before serving."""
    settings = settings or Settings()
    db = db or Database(settings.db_url)
    check_schema(db.engine)   # refuse to start on a schema that is behind

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        supervisor: Supervisor | None = app.state.workers
        if supervisor is not None:
            supervisor.start()
        log.info("grader service up at %s: database %s, sandbox %s, %d grading worker(s)",
                 app.state.address or "(address chosen by the server)", db.engine.url.render_as_string(hide_password=True),
                 _sandbox_name(supervisor, settings), supervisor.count if supervisor else 0)
        try:
            yield
        finally:
            log.info("grader service shutting down: finishing the grades in progress")
            if supervisor is not None:
                supervisor.close()
            db.dispose()
            log.info("grader service stopped")

    app = FastAPI(title="MyTorch grading service", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None,   # app.http.docs serves /docs from local files
                  description="Upload handins, see feedback and scores. Authenticate with "
                              "`Authorization: Bearer TOKEN` or the session cookie from /api/v1/login. "
                              'Every error answers `{"error": CODE, "message": SENTENCE}`.')
    app.state.settings = settings
    app.state.db = db
    app.state.assessments = load_assessments(settings)
    # the grading workers this server runs, if any (threads here; `grader serve` replaces them
    # with its prepared worker processes)
    app.state.workers = Supervisor(db, settings, workers, runtime=WorkerRuntime.THREADS) if workers else None
    app.state.address = None       # the address it listens on (for the start-up line)
    app.state.limiter = RateLimiter(db)   # logins and uploads, shared by every web process
    app.state.flashes = Flashes()         # a form's result shown once after its redirect
    # Handlers read all of app.state through app.http.deps (DbDep, SettingsDep, ...), nowhere else.
    from app import api, web
    from app.http import docs
    from app.web import handout
    from app.web.common import error_response
    errors.install(app, html_page=error_response)   # pages for browsers, JSON for the API
    # caps and times every body, and stamps scope["received_at"] when it has fully arrived
    app.add_middleware(RequestBodyLimits)
    headers.install(app, settings)

    app.include_router(web.router)   # the pages
    docs.install(app)                # before /static: its assets live under /static/swagger-ui
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.include_router(api.router)
    app.include_router(handout.router)

    from app.api.models import Ok

    @app.get("/healthz", tags=["ops"], response_model=Ok)
    def healthz() -> Ok:
        return Ok(ok=True)

    return app
