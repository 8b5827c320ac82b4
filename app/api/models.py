"""The bodies of the JSON routes that are the API's own (sessions, tokens, staff actions, the
queue); the course's views that pages show too are app.course.views. Every route declares one of
these, or a view, as its response_model, so /docs documents every success body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.course.views import SubmissionForStaff, SubmissionPublic
from app.store.states import SubmissionStatus


class UserPublic(BaseModel):
    username: str
    display_name: str
    role: str
    nickname: str | None


class SessionStarted(BaseModel):
    user: UserPublic
    csrf_token: str = Field(description="send it as X-CSRF-Token on writes made with the cookie")


class Activated(BaseModel):
    user: UserPublic


class Ok(BaseModel):
    ok: bool


class TokenPublic(BaseModel):
    id: int
    name: str
    created_at: str
    revoked: bool


class NewToken(BaseModel):
    id: int
    name: str
    token: str = Field(description="shown once; only its hash is stored")


class Revoked(BaseModel):
    revoked: int


class Queued(BaseModel):
    queued: int = Field(description="how many grading jobs were queued")


class ExtensionSet(BaseModel):
    username: str
    assessment: str
    seconds: int


class RunningJob(BaseModel):
    job: int
    submission: int
    worker: str | None
    attempt: int
    started_at: str
    lease_expires_at: str | None


class WorkDir(BaseModel):
    bytes: int
    job_dirs: int
    slot_dirs: int


class ServerWorkers(BaseModel):
    runtime: str = Field(description="threads or processes")
    count: int
    sandbox: str | None
    unsafe: bool
    what: str = Field(description='e.g. "2 child processes of `grader serve`"')


class QueueHealth(BaseModel):
    """Jobs by state, the oldest wait, what is running, and the work directory."""
    queued: int
    running: int
    done: int
    failed: int
    oldest_queued_seconds: float | None
    running_jobs: list[RunningJob]
    server_workers: ServerWorkers | None = Field(description="this server's own workers (null: a web-only "
                                                             "tier); `grader worker`s show in running_jobs")
    work_dir: WorkDir | None


class Submitted(BaseModel):
    """An upload's answer. With ?wait= and the grade in, the submission's fields too (see
    SubmissionPublic; passing tests' checks only with ?verbose=1) and a one-line `summary`."""
    model_config = ConfigDict(extra="allow")
    id: int
    version: int
    status: SubmissionStatus
    url: str
    page_url: str = Field(description="absolute: the feedback page to open")
    summary: str | None = Field(default=None, description="only once graded within ?wait=")


# A student's view or, for a TA, the same with whose it is.
AnySubmission = SubmissionForStaff | SubmissionPublic
