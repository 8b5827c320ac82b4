"""The grading result: what `grader grade --json` prints and what the service stores.

Schema (stable; add fields, never rename or remove):
    {"assessment": "hw1p1", "score": 85, "max_score": 100,
     "sections": [{"name": "Linear Layer", "score": 15, "max_score": 15, "passed": true,
                   "message": null, "location": null,
                   "tests": [{"name": "...", "passed": true, "message": "", "notes": [],
                              "error": null, "location": null, "stopped": null, "reproduce": null,
                              "checks": [{"label": "Z = Linear.forward(A)", "passed": true,
                                          "message": "", "expected": null, "got": null,
                                          "expected_shape": [4, 3], "got_shape": [4, 3],
                                          "worst_index": null, "off_indices": [],
                                          "hint": null, "mistake": null}]}]}],
     "notes": ["..."], "error": null, "sandbox": "bwrap", "unsafe": false,
     "timings": {"unpack": 0.01, "reference": 0.05, "student": 0.3, "compare": 0.01, "total": 0.4}}
`error` is {"code": ..., "message": ...} when the handin could not be graded (then `sections` is
empty); `message` on a section is set when the section as a whole did not run (time limit, crash)
or when one problem stopped all its tests (a syntax or import error: then the section's message
shows the file, the line and a caret once, `location` links that line, and each test's message
only points to it).

Per test:
- `message` is the student-readable summary (unchanged, kept for existing consumers): every
  failing check's sentence, each followed by "expected:\\n<array>\\ngot:\\n<array>" when the
  arrays are small, then the exception if the test raised one.
- `checks` holds one typed entry per compared value, passing or not, in the order compared
  (values after an exception are not compared and have no entry). For a failing check:
  `message` is its one sentence (no array text); `expected`/`got` are the arrays as nested lists
  of floats (a bare float for a scalar; NaN and infinities serialise as "NaN", "Infinity",
  "-Infinity") when both have at most compare.SMALL_ARRAY entries, else null; `expected_shape`
  and `got_shape` are lists of ints (null when there is no array); `worst_index` is the index of
  the largest error (or of the first non-finite entry) in the expected array's coordinates;
  `off_indices` lists the indices of the entries that are off (at most compare.MAX_OFF_INDICES),
  for highlighting the `expected`/`got` excerpts. `hint` is one non-scoring sentence when the
  wrong value is recognisably a classic mistake (`mistake` says which: divided or multiplied by a
  whole number, sign flipped, transposed, swapped with another value, off by a factor the test
  names such as 1 - p or beta). A passing check carries only label, passed and the shapes.
- `error` is the exception the test raised (a traceback of the student's frames), else null;
  `location` ({"path", "line"}) is where a failing test stopped in the student's code: the
  traceback's last student frame, else the file of the class under test (line null);
  `reproduce` is, for a failing test, a short Python script that rebuilds the case (its class,
  input arrays and calls; grader/reproduce.py), null when the inputs are too large.
- `stopped` says why a failing test gave nothing to compare: "import" (the section's `message`
  and `location` say which file and line), "time_limit" (the section's time ran out while it
  ran: `error` holds the student's stack at that moment, `location` its innermost line),
  "not_reached" (the time ran out before it began); null otherwise.
- `notes` is non-scoring advice (e.g. a parameter gradient of shape (C,) accepted for (1, C)):
  a test with notes can pass, and notes never change a score.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from typing_extensions import TypeAliasType


def _json_float(value: float) -> float | str:
    """A NaN or infinity the student produced stays visible in JSON: "NaN", "Infinity", "-Infinity"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


# Serialised so in every JSON dump, whichever model is outermost (a service view, a FastAPI
# response_model, a list of them), not only when a model of this module is.
JsonFloat = Annotated[float, PlainSerializer(_json_float, when_used="json")]
# An array excerpt: a float (a scalar) or nested lists of floats, like ndarray.tolist().
Excerpt = TypeAliasType("Excerpt", "JsonFloat | list[Excerpt]")


class _Model(BaseModel):
    # the same for the models' other floats, when one of these is the outermost model
    model_config = ConfigDict(ser_json_inf_nan="strings")


class Mistake(StrEnum):
    """A classic mistake a wrong value is recognisably the result of (grader/compare.py `hint`)."""
    DIVIDED = "divided"          # every entry is the expected one divided by a whole number
    MULTIPLIED = "multiplied"    # ... times a whole number
    SIGN = "sign"                # ... with its sign flipped
    TRANSPOSED = "transposed"    # the value is the expected one transposed
    SWAPPED = "swapped"          # two values each hold the other's
    FACTOR = "factor"            # off by a factor the test names (1 - p, beta)


class CheckResult(_Model):
    """The outcome of comparing one saved value with the reference's (see the module docstring)."""

    label: str
    passed: bool
    message: str = ""
    hint: str | None = None          # failing: one non-scoring sentence naming a classic mistake
    mistake: Mistake | None = None   # which one
    expected: Excerpt | None = None
    got: Excerpt | None = None
    expected_shape: list[int] | None = None
    got_shape: list[int] | None = None
    worst_index: list[int] | None = None
    off_indices: list[list[int]] = Field(default_factory=list)


class SourceLocation(_Model):
    """Where a failing test stopped in the student's code (a path as in the handin)."""

    path: str            # e.g. "mytorch/nn/batchnorm.py"
    line: int | None = None


class Stopped(StrEnum):
    """Why a test gave no values to compare (a test that ran to its end has none)."""
    IMPORT = "import"              # a file it needs could not be imported: the section's message says where
    TIME_LIMIT = "time_limit"      # the time limit stopped the section while this test ran
    NOT_REACHED = "not_reached"    # the time limit stopped the section before this test began


class TestResult(_Model):
    name: str
    passed: bool
    message: str = ""
    stopped: Stopped | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    error: str | None = None                 # the exception the test raised (student frames only)
    location: SourceLocation | None = None   # failing: the traceback's last student frame, else the class's file
    reproduce: str | None = None             # failing: a script that rebuilds the case (grader/reproduce.py)


class SectionResult(_Model):
    name: str
    score: int
    max_score: int
    passed: bool
    message: str | None = None
    tests: list[TestResult] = Field(default_factory=list)
    location: SourceLocation | None = None   # where the section's message points (a syntax or import error's line)


class GradeError(_Model):
    code: str
    message: str


class GradeResult(_Model):
    assessment: str
    score: int = 0
    max_score: int
    sections: list[SectionResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    error: GradeError | None = None
    sandbox: str = ""
    unsafe: bool = False
    timings: dict[str, float] = Field(default_factory=dict)  # seconds per phase (unpack, reference, ...)

    @property
    def reusable(self) -> bool:
        """Whether an identical resubmission may be shown this result again instead of being graded:
        not when a section stopped on a limit or crashed (`message` set), which can depend on the
        machine's load rather than on the handin."""
        return all(s.message is None for s in self.sections)

    def autolab_scores(self) -> dict[str, int]:
        """The official autograder's last line: {"scores": {...}} with exactly its keys."""
        return {"scores": {s.name: s.score for s in self.sections}}
