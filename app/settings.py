"""Service settings, from GRADER_* environment variables (DATABASE_URL also accepted bare)."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADER_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "GRADER_DATABASE_URL"))
    assessments_dir: Path = REPO_ROOT / "assessments"
    demo: bool = False                       # also load `<slug>-demo` copies dated around now
    secret_key: str | None = None            # signs session cookies; kept in data_dir when unset
    # The service's public address: activation links, the handout script and the pages' curl
    # lines use it (never the request's Host header). `grader serve` defaults it to its own
    # --host/--port when unset.
    base_url: str = "http://127.0.0.1:8000"
    cookie_secure: bool = False              # set behind HTTPS
    session_max_age: int = 7 * 24 * 3600
    device_cookie_max_age: int = 365 * 24 * 3600   # "this browser logged in as X before" (rate limits)

    # workers
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1)
    unsafe_no_sandbox: bool = False          # run student code WITHOUT isolation (tests/dev only)
    sandbox_slots: int = 1                   # sandboxes per worker (a handin runs in one)
    # The most a suite may raise one section's limits to (grader.plan.Budget; HW2P1's 2-d
    # convolutions ask for more CPU): what an endless loop in such a section costs a worker.
    section_max_cpu_seconds: float = 60.0
    section_max_wall_seconds: float = 150.0
    section_max_memory_bytes: int = 4 << 30
    lease_seconds: float = 120.0
    heartbeat_seconds: float = 20.0
    poll_seconds: float = 0.5                # idle workers look again (sooner when a job is queued here)
    worker_nice: int = 10                    # grading yields the CPU to the web tier
    max_attempts: int = 3                    # tries of a job before a grader error shows (its one home)
    # Where grades unpack handins and sandbox slots keep their scratch (grader/workdir.py): the
    # service's own, `data_dir/work` when unset; what a killed grade left there is swept at start
    # and every sweep_seconds.
    work_dir: Path | None = None
    sweep_seconds: float = 600.0

    # limits
    login_attempts_per_minute: int = 10      # per account from unknown browsers; per known browser
    login_attempts_per_minute_per_client: int = 30   # per client address, whatever the account
    uploads_per_minute: int = 20
    max_wait_seconds: float = 600.0

    # the web tier (README, "Web-tier security")
    header_timeout_seconds: float = 10.0     # a request's headers must arrive within this
    body_timeout_seconds: float = 60.0       # and its whole body within this (10 MiB: >= 175 KiB/s)
    form_max_bytes: int = 16 << 10           # bodies of login, activation, every form and JSON request
    roster_max_bytes: int = 1 << 20          # a roster CSV upload
    similarity_archive_max_bytes: int = 200 << 20   # a TA's tar of earlier handins for the similarity archive
    upload_overhead_bytes: int = 64 << 10    # multipart framing allowed on top of an upload's limit
    limit_concurrency: int = 1000            # open connections per web process before 503
    source_views_per_minute: int = 60        # handin source pages per user (highlighting is costly)
    connections_per_client: int = 64         # open connections per peer address (trusted proxies exempt)
    # Comma-separated addresses or networks of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; empty (the default): nobody's, the socket's peer is the client.
    trusted_proxies: str = ""

    @cached_property
    def db_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # plain postgres URLs mean psycopg 3 here
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    url = "postgresql+psycopg://" + url[len(prefix):]
            return url
        return f"sqlite:///{(self.data_dir / 'grader.db').resolve()}"

    @property
    def work_path(self) -> Path:
        return (self.work_dir or self.data_dir / "work").resolve()

    @cached_property
    def signing_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()
