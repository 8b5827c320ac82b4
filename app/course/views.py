"""The course's read models: what the JSON API answers, as typed views (pydantic). A route declares
them as its `response_model`, so /docs documents every body and FastAPI checks each answer
against them (app.course.submissions and app.course.standings still build them as dicts, which
the pages render).

Fields a viewer may not see are not null but absent: a student's scoreboard row and submission
have no `username`/`user` (the staff variants add them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.store.states import SubmissionStatus
from grader.result import SectionResult


class _View(BaseModel):
    # extra="allow": a field added to a view's builder reaches the JSON even before it is declared
    # here (declared fields are documented and checked)
    model_config = ConfigDict(frozen=True, extra="allow")


class UserRef(_View):
    username: str
    display_name: str


class Timestamps(_View):
    received: str | None = Field(description="ISO 8601, UTC")
    queued: str | None
    started: str | None
    finished: str | None


class QueuePlace(_View):
    """Where a queued job stands: a position (1 = next) and a rough wait."""
    position: int
    running: int
    workers: int
    estimate_seconds: int | None


class ReusedFrom(_View):
    """The earlier submission (same bytes, same grader) whose result this one shows."""
    id: int
    version: int
    url: str


class CountedRef(_View):
    """The submission an assessment total comes from (this one or another)."""
    id: int
    version: int
    page_url: str


class Policy(_View):
    late_days: int
    late_penalty: int
    score_after_penalty: int | None
    counts: bool = Field(description="whether this submission is the one that counts")
    counted_submission: CountedRef | None = None
    early_bonus: int
    assessment_total: int
    counted_rule: str


class SubmissionPublic(_View):
    """One submission as its student sees it: status, score, sections with feedback, policy."""
    id: int
    version: int
    assessment: str
    status: SubmissionStatus
    url: str
    page_url: str
    filename: str
    sha256: str
    score: int | None
    max_score: int | None
    sections: list[SectionResult]
    notes: list[str]
    handin_error: str | None
    grader_error: str | None
    unsafe: bool
    reused_from: ReusedFrom | None
    timestamps: Timestamps
    attempts: int
    regrading: bool
    queue: QueuePlace | None = Field(description="while queued")
    received_local: str | None = Field(default=None, description="in the assessment's time zone")
    policy: Policy | None = None


class SubmissionForStaff(SubmissionPublic):
    """The same, for a TA: whose it is."""
    user: UserRef


class ScoreboardRow(_View):
    """A student's counted standing, by nickname."""
    nickname: str | None
    score: int
    raw: int
    late_penalty: int
    early_bonus: int
    sections: list[SectionScore]
    submissions: int
    last_submission: str | None


class StaffScoreboardRow(ScoreboardRow):
    username: str
    display_name: str


class SectionScore(_View):
    name: str
    score: int
    max_score: int


class AssessmentPublic(_View):
    """An assessment's rules and the caller's own deadlines (with their extension)."""
    slug: str
    title: str
    timezone: str
    max_score: int
    early_bonus: int
    counts: str
    max_submissions: int = Field(description="0: no limit")
    min_interval_seconds: int
    late_penalty_percent_per_day: float
    upload_max_bytes: int
    sections: dict[str, int]
    release: str | None
    early: str | None
    due: str | None
    last_accepted: str | None
    extension_seconds: int


ScoreboardRow.model_rebuild()
StaffScoreboardRow.model_rebuild()
