"""The grading result: what `grader grade --json` prints and what the service stores.

Schema (stable; add fields, never rename or remove):
    {"assessment": "hw1p1", "score": 85, "max_score": 100,
     "sections": [{"name": "Linear Layer", "score": 15, "max_score": 15, "passed": true,
                   "message": null,
                   "tests": [{"name": "...", "passed": true, "message": ""}]}],
     "notes": ["..."], "error": null, "sandbox": "bwrap", "unsafe": false,
     "timings": {"unpack": 0.01, "reference": 0.05, "student": 0.3, "compare": 0.01, "total": 0.4}}
`error` is {"code": ..., "message": ...} when the handin could not be graded (then `sections` is
empty); `message` on a section is set when the section as a whole did not run (time limit, crash).
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class TestResult(BaseModel):
    name: str
    passed: bool
    message: str = ""


class SectionResult(BaseModel):
    name: str
    score: int
    max_score: int
    passed: bool
    message: str | None = None
    tests: list[TestResult] = Field(default_factory=list)


class GradeError(BaseModel):
    code: str
    message: str


class GradeResult(BaseModel):
    assessment: str
    score: int = 0
    max_score: int
    sections: list[SectionResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    error: GradeError | None = None
    sandbox: str = ""
    unsafe: bool = False
    timings: dict[str, float] = Field(default_factory=dict)  # seconds per phase (unpack, reference, ...)

    def autolab_scores(self) -> dict[str, int]:
        """The official autograder's last line: {"scores": {...}} with exactly its keys."""
        return {"scores": {s.name: s.score for s in self.sections}}
