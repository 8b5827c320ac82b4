"""Account rules live in the accounts use case, not in the pages (issue 19 item 4): roles,
nicknames and activation links are `app.auth.accounts` functions the pages and the API share,
`app.web.queries` only reads, and one rule picks the assessment a page means when none is named."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import REPO

from app.auth import accounts
from app.course.assessments import default_assessment
from app.store.models import User

from .test_post_redirect_get import _login

# ---------------------------------------------------------------------------------------------
# the rules, called as the use case (no page, no request)


def test_nickname_rules(service):
    with service.db.session() as s, s.begin():
        alice, bob = accounts.get_user(s, "alice"), accounts.get_user(s, "bob")
        assert accounts.set_nickname(s, alice.id, "  quiet-otter ") == "quiet-otter"
        with pytest.raises(accounts.AccountError, match="taken"):
            accounts.set_nickname(s, bob.id, "quiet-otter")
        with pytest.raises(accounts.AccountError, match="3 to 32"):
            accounts.set_nickname(s, bob.id, "<script>")
    with service.db.read_session() as s:
        assert s.get(User, alice.id).nickname == "quiet-otter"


def test_a_ta_cannot_make_anyone_staff_nor_change_their_own_role(service):
    with service.db.session() as s, s.begin():
        tina, alice = accounts.get_user(s, "tina"), accounts.get_user(s, "alice")
        with pytest.raises(accounts.NotAllowed):
            accounts.set_role(s, tina, "alice", "ta")
        with pytest.raises(accounts.NotAllowed):
            accounts.set_role(s, tina, "tina", "admin")
        generation = alice.session_generation
        assert accounts.set_role(s, tina, "alice", "student").role == "student"
        assert alice.session_generation == generation   # no change, no sessions ended
        with pytest.raises(accounts.AccountError, match="Unknown role"):
            accounts.set_role(s, tina, "alice", "root")


def test_a_ta_cannot_issue_an_activation_link_for_staff(service):
    from app.auth import admin
    admin.add_user(service.db, "ada", "admin", "ada-password")
    with service.db.session() as s, s.begin():
        tina = accounts.get_user(s, "tina")
        with pytest.raises(accounts.NotAllowed):
            accounts.activation_link(s, tina, "ada", "https://grader.example/")
        assert accounts.activation_link(s, tina, "nobody", "https://grader.example") is None
        with pytest.raises(accounts.AccountError, match="already activated"):
            accounts.activation_link(s, tina, "alice", "https://grader.example/")   # a reset link's job
        accounts.add_user(s, "newbie")
        link = accounts.activation_link(s, tina, "newbie", "https://grader.example/")
    assert re.fullmatch(r"https://grader\.example/activate\?token=[\w-]+", link)


def test_the_web_read_models_write_nothing():
    """app/web/queries.py keeps read models only: no session that begins a transaction, no add,
    no assignment to a loaded row's attribute."""
    tree = ast.parse((REPO / "app/web/queries.py").read_text())
    def targets(node):
        return node.targets if isinstance(node, ast.Assign) else [node.target]
    writes = [node.lineno for node in ast.walk(tree)
              if (isinstance(node, ast.Attribute) and node.attr in ("begin", "add", "delete", "flush", "commit"))
              or (isinstance(node, ast.Assign | ast.AugAssign)
                  and any(isinstance(t, ast.Attribute) for t in targets(node)))]
    assert writes == [], f"app/web/queries.py writes at lines {writes}"


# ---------------------------------------------------------------------------------------------
# one rule for the assessment meant when none is named

def test_default_assessment_prefers_one_taking_uploads_soonest_due(service):
    now = datetime.now(UTC)
    chosen = default_assessment(service.app.state.assessments.values(), now)
    taking = [a for a in service.app.state.assessments.values() if a.release <= now <= a.last_accepted]
    assert chosen in taking and chosen.due == min(a.due for a in taking)
    closed = [a for a in service.app.state.assessments.values() if a.last_accepted < now]
    nearest = default_assessment(closed, now)
    assert nearest.due == max(a.due for a in closed)   # all due in the past: the latest is nearest
    assert default_assessment([], now) is None
    later = now + timedelta(days=30)   # nothing takes uploads then: the nearest due date
    assert default_assessment(service.app.state.assessments.values(), later).due == max(
        a.due for a in service.app.state.assessments.values())


def test_every_page_means_the_same_assessment_when_none_is_named(service):
    """The TA lists, the profile's terminal instructions and the served create_tarball.sh all
    default to one assessment (they used two rules: 'open now' and 'the first -demo or first')."""
    expected = default_assessment(service.app.state.assessments.values()).slug
    tina, _ = _login(service, "tina")
    bob, _ = _login(service, "bob")
    subs = tina.get("/ta/submissions").text
    assert re.search(r'<option value="([^"]+)" selected', subs).group(1) == expected
    assert f"Counted on {expected}<" in tina.get("/ta/students").text
    profile = bob.get("/profile").text
    assert re.search(r'create_tarball\.sh\?assessment=([^"]+)" download>Download', profile).group(1) == expected
    script = bob.get("/handout/create_tarball.sh").text
    assert re.search(r"^DEFAULT_SLUG=(\S+)$", script, re.MULTILINE).group(1) == expected
    tina.close()
    bob.close()


def test_the_demo_rule_is_gone_from_the_pages():
    """No page picks an assessment by its name ending in -demo any more (the CLI still loads the
    demo copies when asked to grade a -demo slug: that is which assessments exist, not a default)."""
    offenders = [str(p.relative_to(REPO)) for p in Path(REPO, "app", "web").rglob("*.py")
                 if 'endswith("-demo")' in p.read_text()]
    assert offenders == []
