"""Assessments, loaded from assessments/*.toml into memory at startup."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator, model_validator

from app.course.policy import Rules
from grader import suites
from grader.handin import UnpackLimits
from grader.suite import Suite


class Assessment(BaseModel):
    slug: str
    title: str
    suite: str                       # a grading suite's name (grader/suites/); checked at load
    timezone: str = "America/New_York"
    release: datetime
    early: datetime | None = None
    due: datetime
    last_accepted: datetime
    early_bonus: int = 0
    late_penalty_percent_per_day: float = 0
    max_submissions: int = 0
    min_interval_seconds: int = 0
    counts: Literal["latest", "best", "chosen"] = "latest"   # "chosen": the student picks (Gradescope's active)
    # At most what the worker's unpack reads, so the upload check and the worker refuse alike.
    upload_max_bytes: int = Field(UnpackLimits().archive_bytes, gt=0, le=UnpackLimits().archive_bytes)
    # The handout's starter code (a folder), excluded from similarity reports; when unset, a
    # skeleton derived from the reference solution (signatures and docstrings) is used.
    skeleton: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _points_come_from_the_suite(cls, data):
        if isinstance(data, dict) and "sections" in data:
            raise ValueError("an assessment declares no [sections]: the points are declared once, "
                             "on the suite's sections")
        return data

    @field_validator("suite")
    @classmethod
    def _known_suite(cls, v: str) -> str:
        try:
            suites.get(v)
        except suites.UnknownSuite as exc:  # refused at load: never graded silently as another
            raise ValueError(str(exc)) from None
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    @model_validator(mode="after")
    def _localize_and_check(self) -> Assessment:
        tz = self.tz
        for name in ("release", "early", "due", "last_accepted"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:  # TOML local date-time: the course's zone
                object.__setattr__(self, name, value.replace(tzinfo=tz))
        if not (self.release <= self.due <= self.last_accepted):
            raise ValueError("need release <= due <= last_accepted")
        if self.early is not None and not (self.release <= self.early <= self.due):
            raise ValueError("need release <= early <= due")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def grading_suite(self) -> Suite:
        return suites.get(self.suite)

    @property
    def sections(self) -> dict[str, int]:
        """Section name -> points, in the suite's order."""
        return self.grading_suite.section_points

    @property
    def max_score(self) -> int:
        return self.grading_suite.max_score

    def rules(self) -> Rules:
        return Rules(release=self.release, early=self.early, due=self.due,
                     last_accepted=self.last_accepted, max_score=self.max_score,
                     early_bonus=self.early_bonus,
                     late_penalty_percent_per_day=self.late_penalty_percent_per_day,
                     max_submissions=self.max_submissions, min_interval_seconds=self.min_interval_seconds,
                     counts=self.counts)

    def local(self, t: datetime | None) -> str | None:
        """A time as the course shows it, e.g. 2026-02-06T23:59:00-05:00."""
        return t.astimezone(self.tz).isoformat() if t else None


def load_file(path: Path) -> Assessment:
    with open(path, "rb") as f:
        data = tomllib.load(f)
    if data.get("skeleton"):   # relative to the TOML file
        data["skeleton"] = str((path.parent / data["skeleton"]).resolve())
    return Assessment.model_validate(data)


def load_dir(folder: Path) -> dict[str, Assessment]:
    found = {}
    for path in sorted(folder.glob("*.toml")):
        a = load_file(path)
        found[a.slug] = a
    return found


def default_assessment(assessments: Iterable[Assessment], now: datetime | None = None) -> Assessment | None:
    """The assessment a page, the handout script or the CLI means when none is named: one taking
    uploads now (the soonest due first), otherwise the one whose due date is nearest to now.
    A demo course's copies are dated around now, so this finds them without knowing their names."""
    now = now or datetime.now(UTC)
    candidates = list(assessments)
    if not candidates:
        return None
    taking = [a for a in candidates if a.release <= now <= a.last_accepted]
    if taking:
        return min(taking, key=lambda a: a.due)
    return min(candidates, key=lambda a: abs((a.due - now).total_seconds()))


def demo_copy(base: Assessment, now: datetime | None = None) -> Assessment:
    """The same assessment with dates around NOW, so a new user can submit today."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    data = base.model_dump()
    data.update(slug=f"{base.slug}-demo", title=f"{base.title} (demo)",
                release=now - timedelta(days=1), early=now + timedelta(days=3),
                due=now + timedelta(days=7), last_accepted=now + timedelta(days=10),
                max_submissions=0, min_interval_seconds=0)
    return Assessment.model_validate(data)
