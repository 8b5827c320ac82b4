"""Database tables (SQLAlchemy 2.0). Every schema change goes through an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from app.store.states import (
    STORED_REPORT_STATES,
    JobKind,
    JobState,
    LinkPurpose,
    ReportState,
    SubmissionStatus,
    check_sql,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stored in UTC; always read back timezone-aware (SQLite keeps no zone)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


ROLES = ("student", "ta", "admin")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(10), default="student")
    nickname: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Every session cookie carries the generation it was issued in; bumping it (logout, password
    # change, activation, role change) ends every session of the account at once.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def is_staff(self) -> bool:
        return self.role in ("ta", "admin")


class AccountLink(Base):
    """A one-time link that sets an account's password (activation, or a TA's password reset),
    and its record: who issued it for whom, when, until when, and when it was used or replaced.
    Only the secret's sha256 is stored; the link itself is shown once to whoever issued it."""
    __tablename__ = "account_links"
    __table_args__ = (CheckConstraint(check_sql("purpose", LinkPurpose), name="ck_account_links_purpose"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))   # LinkPurpose
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)   # sha256 hex of the secret
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)   # None: the CLI
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)   # a newer link came
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)   # sha256 hex of the token
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    user: Mapped[User] = relationship()


class Extension(Base):
    """A TA-granted extension: moves the student's due date and last accepted moment."""
    __tablename__ = "extensions"
    __table_args__ = (UniqueConstraint("user_id", "assessment"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    assessment: Mapped[str] = mapped_column(String(100))
    seconds: Mapped[int] = mapped_column(Integer)
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CountedChoice(Base):
    """The submission a student marked as the one that counts (an assessment with counts = "chosen")."""
    __tablename__ = "counted_choices"
    __table_args__ = (UniqueConstraint("user_id", "assessment"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    assessment: Mapped[str] = mapped_column(String(100))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Blob(Base):
    """Handin bytes, deduplicated by sha256, kept in the database so every worker can reach them."""
    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("user_id", "assessment", "version"),
                      Index("ix_submissions_assessment_user", "assessment", "user_id"),
                      CheckConstraint(check_sql("status", SubmissionStatus), name="ck_submissions_status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assessment: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    filename: Mapped[str] = mapped_column(String(255), default="handin.tar")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default=SubmissionStatus.QUEUED)   # SubmissionStatus
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result_id: Mapped[int | None] = mapped_column(Integer, nullable=True)   # the result shown (results.id)
    grader_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    user: Mapped[User] = relationship()


PRIORITY_LIVE, PRIORITY_REGRADE = 0, 10


class Job(Base):
    """One grading of one submission: the queue. A regrade is a new job at lower priority."""
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "state", "priority", "id"),
                      CheckConstraint(check_sql("state", JobState), name="ck_jobs_state"),
                      CheckConstraint(check_sql("kind", JobKind), name="ck_jobs_kind"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    suite: Mapped[str] = mapped_column(String(40))   # the grading suite (grader/suites/) to run
    kind: Mapped[str] = mapped_column(String(10), default=JobKind.SUBMIT)   # JobKind
    priority: Mapped[int] = mapped_column(Integer, default=PRIORITY_LIVE)
    state: Mapped[str] = mapped_column(String(10), default=JobState.QUEUED)   # JobState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class RateLimitHit(Base):
    """One counted hit of a rate-limited key (app.auth.ratelimit): a sliding window over these rows.
    The key is a sha256, so a row has a fixed size whatever the client sent; a key holds at most
    its limit of rows, and rows older than the window are deleted as new hits come."""
    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_key_at", "key", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float, index=True)   # unix seconds


class Result(Base):
    """A recorded grading result; at most one per job (idempotent recording)."""
    __tablename__ = "results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), unique=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    max_score: Mapped[int] = mapped_column(Integer)
    handin_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # student's fault: score 0
    body: Mapped[str] = mapped_column(Text)          # grader.result.GradeResult as JSON
    worker: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # grader.version.reuse_key when an identical resubmission may show this result again; None when
    # it may not (a section stopped on a limit or crashed: that can depend on the machine's load)
    reuse_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    reused_from: Mapped[int | None] = mapped_column(Integer, nullable=True)   # results.id shown again


class GradingCode(Base):
    """What grading code each worker runs (grader.version.reuse_key), announced when it starts. The web
    tier may reuse a stored result only under the key the workers announced last: its own copy of the
    grader can be older than theirs (workers redeployed alone)."""
    __tablename__ = "grading_code"
    worker: Mapped[str] = mapped_column(String(100), primary_key=True)
    reuse_key: Mapped[str] = mapped_column(String(64))
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SimilarityReport(Base):
    """A TA-requested comparison of every student's counted handin (grader.similarity), run in the
    background; `body` holds the grader.similarity.Report as JSON once done."""
    __tablename__ = "similarity_reports"
    __table_args__ = (CheckConstraint(check_sql("state", STORED_REPORT_STATES), name="ck_similarity_reports_state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assessment: Mapped[str] = mapped_column(String(100), index=True)
    state: Mapped[str] = mapped_column(String(10), default=ReportState.QUEUED)   # ReportState
    threshold: Mapped[float] = mapped_column(Float)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    # {username: submission id}: the counted submissions this report compared
    submissions: Mapped[str | None] = mapped_column(Text, nullable=True)


class SimilarityArchiveEntry(Base):
    """One earlier handin (an earlier semester's, a public solution) every report of ASSESSMENT
    compares its students with: the sources it contributes (grader.similarity.read_archive, capped
    when imported) as JSON {path: source}, labelled with where it came from."""
    __tablename__ = "similarity_archive"
    __table_args__ = (UniqueConstraint("assessment", "source", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assessment: Mapped[str] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    files: Mapped[str] = mapped_column(Text)
    left_out: Mapped[str] = mapped_column(Text, default="")
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SimilarityReview(Base):
    """A TA looked at the pair A, B (two students, or a student and an archive entry's label) of
    ASSESSMENT's similarity reports; it stays marked in later reports."""
    __tablename__ = "similarity_reviews"
    __table_args__ = (UniqueConstraint("assessment", "a", "b"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assessment: Mapped[str] = mapped_column(String(100), index=True)
    a: Mapped[str] = mapped_column(String(100))
    b: Mapped[str] = mapped_column(String(320))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScoreAdjustment(Base):
    """A TA moved one submission's score by POINTS (app.course.adjustments): REASON is for the staff,
    COMMENT is shown to the student. Rows are never changed: a new row replaces the one in force
    (the latest of its submission), so the earlier ones are the audit trail of who did what when."""
    __tablename__ = "score_adjustments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
