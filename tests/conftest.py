"""Makes tests/support.py (as `support`) and the repository's modules (e.g. `bench.pg`) importable
from every test folder; marks the required groups and fails a run that required one and ran none."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


# ---------------------------------------------------------------------------------------------
# Required groups: a CI run (`.ci/run` passes --require-ran=sandbox,security,browser) fails when
# every test of a group was skipped, e.g. on a machine where bubblewrap, root or Chromium went
# missing, instead of passing on the tests that did not need them.

GROUPS = {
    "sandbox": "needs a real sandbox (bubblewrap as root); the fixtures sandboxes and sandbox_executor mark it",
    "security": "an attack on the grading path or the web tier (everything under tests/security)",
    "browser": "drives Chromium through Playwright (whatever uses the browser fixture)",
}
GROUP_FIXTURES = {"sandbox": {"sandboxes", "sandbox_executor"}, "browser": {"browser"}}
GROUP_FOLDERS = {"security": "security"}
_TESTS = Path(__file__).resolve().parent


def pytest_addoption(parser):
    parser.addoption("--require-ran", default="", metavar="GROUPS",
                     help=f"comma-separated groups ({', '.join(GROUPS)}): fail the run when no test "
                          "of one of them ran (all skipped, or none selected)")


def pytest_configure(config):
    for name, what in GROUPS.items():
        config.addinivalue_line("markers", f"{name}: {what}")
    required = [g for g in config.getoption("--require-ran").split(",") if g]
    unknown = set(required) - set(GROUPS)
    if unknown:
        raise pytest.UsageError(f"--require-ran: no such group {', '.join(sorted(unknown))} "
                                f"(groups: {', '.join(GROUPS)})")
    config.pluginmanager.register(RequiredGroups(required), "required-groups")


class RequiredGroups:
    """Marks each test with its groups, counts the ones whose body ran, and fails the session
    when a required group ran none."""

    def __init__(self, required: list[str]) -> None:
        self.required = required
        self.members: dict[str, set[str]] = {g: set() for g in GROUPS}   # node ids of each group
        self.ran: set[str] = set()   # node ids whose test body was called (passed or failed)
        self.missing: list[str] = []

    def pytest_collection_modifyitems(self, items):
        for item in items:
            try:
                folder = Path(item.path).resolve().relative_to(_TESTS).parts[0]
            except ValueError:
                folder = ""
            for group in GROUPS:
                if (GROUP_FOLDERS.get(group) == folder
                        or GROUP_FIXTURES.get(group, set()) & set(getattr(item, "fixturenames", ()))):
                    item.add_marker(group)
                if item.get_closest_marker(group) is not None:
                    self.members[group].add(item.nodeid)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and not report.skipped:   # pytest.skip() in a body ends its call too
            self.ran.add(report.nodeid)

    def pytest_sessionfinish(self, session):
        self.missing = [g for g in self.required if not self.members[g] & self.ran]
        if self.missing and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if not self.required:
            return
        terminalreporter.section("required groups")
        for group in self.required:
            ran = len(self.members[group] & self.ran)
            terminalreporter.write_line(f"{group}: {ran} ran, {len(self.members[group]) - ran} skipped or not run")
        for group in self.missing:
            terminalreporter.write_line(f"FAILED: no {group} test ran ({GROUPS[group]}); "
                                        "this machine must run them", red=True, bold=True)
