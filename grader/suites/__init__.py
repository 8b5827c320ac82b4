"""The registry of grading suites: every module in this package that defines `SUITE`.

Adding an assessment is one module here (its `SUITE`), one reference tree and one TOML in
assessments/ naming the suite; nothing else lists the suites.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from grader.suite import Suite


class UnknownSuite(KeyError):
    def __str__(self) -> str:
        return f"unknown suite {self.args[0]!r} (known: {', '.join(sorted(all_suites()))})"


@cache
def all_suites() -> dict[str, Suite]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        suite = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SUITE", None)
        if isinstance(suite, Suite):
            if suite.name in found:
                raise RuntimeError(f"two suites are called {suite.name!r}")
            found[suite.name] = suite
    return found


def get(name: str) -> Suite:
    try:
        return all_suites()[name]
    except KeyError:
        raise UnknownSuite(name) from None
