"""The HW2P1 suite against its catalogue, through the real sandbox: every handin with one real mistake
loses exactly the sections that use the mistaken code, and every correct-but-different handin keeps
all 100 points."""

from __future__ import annotations

import pytest
from catalogue import tar_bytes
from hints_expected import assert_hints
from hw2p1_catalogue import BUGGY, CORRECT, SECTION_POINTS, build_hw2_handin, expected_score

from grader.grade import grade
from grader.suites.hw2p1 import SUITE


def test_catalogue_is_big_enough():
    assert len(BUGGY) >= 30 and len(CORRECT) >= 8


def test_sections_and_points_are_the_suites():
    assert SUITE.section_points == SECTION_POINTS
    assert SUITE.max_score == 100


def assert_lost_exactly(result, lost):
    assert result.error is None, result.error
    assert result.assessment == "hw2p1" and result.max_score == 100
    assert [s.name for s in result.sections] == list(SECTION_POINTS)
    actually_lost = {s.name for s in result.sections if not s.passed}
    details = {s.name: [t.message for t in s.tests if not t.passed][:2] or s.message
               for s in result.sections if s.name in actually_lost ^ set(lost)}
    assert actually_lost == set(lost), details
    assert result.score == expected_score(lost)
    for section in result.sections:
        if section.name in lost:
            failing = [t for t in section.tests if not t.passed]
            assert (failing and all(t.message.strip() for t in failing)) or section.message, section
        else:
            assert all(t.passed for t in section.tests), section


@pytest.mark.parametrize("handin", BUGGY, ids=lambda h: h.name)
def test_buggy_hw2p1_handin_loses_exactly_its_sections(handin, tmp_path, executor):
    root = build_hw2_handin(tmp_path / "src", handin.edits)
    result = grade(tar_bytes(root), executor, suite=SUITE)
    assert_lost_exactly(result, handin.lost)
    assert_hints(result, handin.name)   # issue 20 item 5: no hint but the declared ones
    if handin.expect:
        messages = [t.message for s in result.sections for t in s.tests if not t.passed]
        messages += [s.message for s in result.sections if s.message]
        assert any(handin.expect in m for m in messages), messages[:3]


@pytest.mark.parametrize("handin", CORRECT, ids=lambda h: h.name)
def test_correct_but_different_hw2p1_handin_scores_100(handin, tmp_path, executor):
    root = build_hw2_handin(tmp_path / "src", handin.edits)
    result = grade(tar_bytes(root), executor, suite=SUITE)
    assert_lost_exactly(result, set())
    assert_hints(result, handin.name)   # issue 20 item 5: no hint but the declared ones
    assert result.score == 100 == result.max_score
