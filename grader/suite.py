"""What an assessment's grading needs, in one value: a `Suite`.

A suite names the folders a handin must hold (its `Layout`), what the packages' `__init__.py`
files export in the handout (sent to the runner inside the plans, so the runner stays generic),
where the trusted reference tree lives, and a builder of the sections. Points are declared once,
on the sections the builder returns; everything else (the assessment's maximum, the TOML's check)
reads them from there. Suites are found in grader/suites/ (see its __init__.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from grader.plan import Section

# Builds the sections from a seed (the handin's digest), so a regrade sees the same inputs.
SectionBuilder = Callable[[str], list[Section]]


@dataclass(frozen=True)
class Misplaced:
    """An arrangement that means the handin was built for another assessment: when PRESENT (a file
    or folder) exists and none of ABSENT does, unpacking refuses the handin with MESSAGE. ABSENT lists
    every place this assessment's own marker file may sit (HW2P1's resampling.py is in mytorch/nn/
    or, in S23/F23 handouts, in mytorch/), so a handin holding both homeworks' files is graded."""
    present: str
    absent: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class Layout:
    packages: tuple[str, ...]           # the top-level folders graded, e.g. ("models", "mytorch")
    misplaced: tuple[Misplaced, ...] = ()
    # The course's build command, quoted when a handin has none of the packages.
    build_hint: str = "run create_tarball.sh from the handout folder"
    summary: str = "models/ and mytorch/"   # what the archive holds, as the pages say it
    # Files of which the handin must hold at least one (paths beside the packages), and the
    # sentence that refuses an archive holding none of them (e.g. an HW1P1 handin sent to the bonus).
    needs_one_of: tuple[str, ...] = ()
    none_of_them: str = ""
    # Folders the handout's scripts put on sys.path (HW2P1: mytorch/nn/...), whose files the
    # handin's own files import by their bare names (`from resampling import *`).
    flat: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    name: str                                     # the result's `assessment`, the TOML's `suite`
    title: str
    layout: Layout
    # Package -> {exported name: submodule}, as each package's __init__.py in the handout. The
    # student's own __init__.py files are never executed; names resolve lazily from these.
    exports: dict[str, dict[str, str]]
    reference_root: Path                          # a trusted tree holding layout.packages
    build: SectionBuilder = field(repr=False)

    @cached_property
    def section_points(self) -> dict[str, int]:
        """Section name -> points, read from the sections themselves (in order)."""
        return {s.name: s.points for s in self.build("points")}

    @cached_property
    def required_files(self) -> tuple[str, ...]:
        """The graded modules a handin must hold (the reference's, beside its packages); none when
        the layout accepts any one of `needs_one_of` instead (the bonus grades whichever it finds)."""
        if self.layout.needs_one_of:
            return ()
        return tuple(sorted(str(p.relative_to(self.reference_root)) for package in self.layout.packages
                            for p in (self.reference_root / package).rglob("*.py") if p.name != "__init__.py"))

    @property
    def max_score(self) -> int:
        return sum(self.section_points.values())

    def package_plan(self) -> dict:
        """What the runner needs to import the package under test (part of plans.json)."""
        plan = {"top_level": list(self.layout.packages), "exports": self.exports}
        return plan | {"flat": list(self.layout.flat)} if self.layout.flat else plan
