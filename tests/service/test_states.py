"""States have one source (app/store/states.py): no literal of a state anywhere else in app/, the
moves between them checked, and the database refusing a value outside its enum."""

from __future__ import annotations

import ast
import importlib.util
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.store.db import make_engine
from app.store.states import (
    STORED_REPORT_STATES,
    IllegalMove,
    JobKind,
    JobState,
    ReportState,
    SubmissionStatus,
    check_sql,
    move,
)
from app.web.handout import SCRIPT

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
STATES_MODULE = APP / "store" / "states.py"
VALUES = {str(s) for enum in (SubmissionStatus, JobState, JobKind, ReportState) for s in enum}
STATE_FIELDS = {"state", "status", "kind"}


def _is_state(node: ast.AST) -> bool:
    """A string constant that is a state, or a tuple/list/set holding one."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value in VALUES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_state(e) for e in node.elts)
    return False


def _field(target: ast.AST) -> str | None:
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Name):
        return target.id
    return None


def state_literals(source: str) -> list[int]:
    """Lines of SOURCE where a state is written as a literal: compared, assigned to a state field,
    passed as state=/status=/kind=, a state parameter's default, or given to `.in_(...)`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(_is_state(n) for n in [node.left, *node.comparators]):
            lines.append(node.lineno)
        elif isinstance(node, ast.keyword) and node.arg in STATE_FIELDS and _is_state(node.value):
            lines.append(node.value.lineno)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (zip(target.elts, node.value.elts, strict=False)
                         if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                         else [(target, node.value)])
                lines += [node.lineno for t, v in pairs if _field(t) in STATE_FIELDS and _is_state(v)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
            defaults += node.args.kw_defaults
            lines += [node.lineno for a, d in zip(args, defaults, strict=True)
                      if d is not None and a.arg in STATE_FIELDS and _is_state(d)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "in_"
              and any(_is_state(a) for a in node.args)):
            lines.append(node.lineno)
    return sorted(set(lines))


_QUOTED = "|".join(sorted(VALUES))
# a state compared or listed inside a Jinja tag ('passed' if ok else 'failed' is a word, not a state)
JINJA_LITERAL = re.compile(r"""(\{%|\{\{)(?:(?!%\}|\}\}).)*?(?:(?:==|!=)\s*|\bin\s*[(\[]\s*)["'](?:"""
                           + _QUOTED + r""")["']""", re.DOTALL)
JS_LITERAL = re.compile(r"""[!=]==?\s*["'](?:""" + _QUOTED + r""")["']|["'](?:""" + _QUOTED + r""")["']\s*[!=]==?""")


def test_the_scanners_find_planted_literals():
    """Guards the guards below: each form of a literal state is caught."""
    planted = ('x.status == "error"\nq.where(Job.state.in_(("queued", "running")))\nJob(kind="reuse")\n'
               'job.state, job.at = "done", now\ndef f(kind="submit"): pass\nsub.status = "graded"\n')
    assert state_literals(planted) == [1, 2, 3, 4, 5, 6]
    assert state_literals('d = {"error": code}\nprint("failed")\nchoices=["error"]\n') == []
    assert JINJA_LITERAL.search('{% if r.state == "failed" %}')
    assert JINJA_LITERAL.search('{% for s in ("queued", "running") %}')
    assert not JINJA_LITERAL.search('<button type="submit">')
    assert not JINJA_LITERAL.search("{{ 'passed' if ok else 'failed' }}")
    assert JS_LITERAL.search('if (b.status === "graded")')


def test_no_state_literal_in_python_outside_its_enum_module():
    found = {str(p.relative_to(ROOT)): state_literals(p.read_text())
             for p in APP.rglob("*.py") if p != STATES_MODULE}
    assert not {k: v for k, v in found.items() if v}, "write the enum member (app/store/states.py) instead"


def test_no_state_literal_in_templates_or_scripts():
    found = [str(p.relative_to(ROOT)) for p in (APP / "templates").glob("*.html")
             if JINJA_LITERAL.search(p.read_text())]
    found += [str(p.relative_to(ROOT)) for p in (APP / "static").rglob("*.js") if JS_LITERAL.search(p.read_text())]
    assert not found, "pages and scripts take states from the Jinja globals or the page's data attributes"


def test_the_handout_script_takes_the_final_statuses_from_the_enum():
    assert not re.search(r"""["'](?:graded|error|queued|running)["']""", SCRIPT)
    assert "__FINAL_STATUSES__" in SCRIPT


def test_the_status_badges_styled_are_the_states():
    css = (APP / "static" / "style.css").read_text()
    styled = set(re.findall(r"\.status-([a-z]+)", css))
    assert {str(s) for s in SubmissionStatus} <= styled
    assert styled <= {str(s) for s in SubmissionStatus} | {str(s) for s in ReportState}


def test_moves_follow_the_tables():
    assert move("queued", JobState.RUNNING) is JobState.RUNNING
    assert move("running", JobState.QUEUED) is JobState.QUEUED          # retry
    assert move("done", JobState.DONE) is JobState.DONE                 # staying put
    assert move("graded", SubmissionStatus.QUEUED) is SubmissionStatus.QUEUED   # regrade
    for current, new in (("done", JobState.QUEUED), ("failed", JobState.RUNNING),
                         ("graded", SubmissionStatus.ERROR), ("done", ReportState.RUNNING)):
        with pytest.raises(IllegalMove):
            move(current, new)
    assert SubmissionStatus.QUEUED.is_pending and SubmissionStatus.ERROR.is_final
    assert not JobState.RUNNING.is_final and JobState.FAILED.is_final


def test_the_migration_checks_what_the_enums_say():
    spec = importlib.util.spec_from_file_location("m0008", ROOT / "migrations" / "versions" / "0008_state_checks.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert dict(migration.CHECKS) == {
        "submissions": [("ck_submissions_status", check_sql("status", SubmissionStatus))],
        "jobs": [("ck_jobs_state", check_sql("state", JobState)), ("ck_jobs_kind", check_sql("kind", JobKind))],
        "similarity_reports": [("ck_similarity_reports_state", check_sql("state", STORED_REPORT_STATES))]}


def test_the_database_refuses_a_state_outside_its_enum(db_url):
    engine = make_engine(db_url)
    now = datetime(2026, 2, 1, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (id, username, display_name, email, role, nickname, active, "
                                 "created_at) VALUES (1, 'alice', '', '', 'student', 'n1', true, :t)"), {"t": now})
            conn.execute(sa.text("INSERT INTO blobs (sha256, size, data, created_at) VALUES ('ab', 1, :d, :t)"),
                         {"d": b"x", "t": now})
            conn.execute(sa.text("INSERT INTO submissions (id, user_id, assessment, version, blob_sha256, filename, "
                                 "received_at, status) VALUES (1, 1, 'hw1p1', 1, 'ab', 'h.tar', :t, :s)"),
                         {"t": now, "s": str(SubmissionStatus.QUEUED)})
        for sql in ("UPDATE submissions SET status = 'finished' WHERE id = 1",
                    ("INSERT INTO jobs (submission_id, suite, kind, priority, state, attempts, max_attempts, "
                    "queued_at) VALUES (1, 'hw1p1', 'submit', 0, 'paused', 0, 3, CURRENT_TIMESTAMP)"),
                    ("INSERT INTO jobs (submission_id, suite, kind, priority, state, attempts, max_attempts, "
                    "queued_at) VALUES (1, 'hw1p1', 'rerun', 0, 'queued', 0, 3, CURRENT_TIMESTAMP)"),
                    ("INSERT INTO similarity_reports (assessment, state, threshold, done, total, created_at, "
                    "updated_at) VALUES ('hw1p1', 'stale', 0.5, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")):
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.execute(sa.text(sql))
    finally:
        engine.dispose()
