"""The HW1P1 Bonus suite, graded through the same executor as HW1P1: buggy handins lose exactly
their sections, correct-but-different ones score 20, and a handin built for the other assessment
is refused with a sentence that says so."""

from __future__ import annotations

import math

import pytest
from bonus_catalogue import BUGGY, CORRECT, MOVES, SECTION_POINTS, build_bonus_handin, expected_score
from catalogue import build_handin, package, tar_bytes
from hints_expected import assert_hints
from scipy.stats import binom

from grader.grade import grade
from grader.suites import hw1p1_bonus
from grader.suites.hw1p1 import SUITE as HW1P1
from grader.suites.hw1p1_bonus import SUITE as BONUS


def test_catalogue_is_big_enough():
    assert len(BUGGY) >= 30 and len(CORRECT) >= 12


def test_points_are_the_courses():
    assert BONUS.section_points == SECTION_POINTS == {"Adam": 5, "AdamW": 5, "Dropout": 10}
    assert BONUS.max_score == 20


def test_a_correct_dropout_fails_the_fraction_check_with_negligible_probability():
    """The documented bound: |dropped - n p| <= 6 sd on n = 20,000 entries, for each p tested."""
    total = 0.0
    # Per p: two calls on the first batch size, one on the second round's.
    for rows in (hw1p1_bonus.DROPOUT_ROWS, hw1p1_bonus.DROPOUT_ROWS, hw1p1_bonus.SECOND_ROWS):
        n = rows * hw1p1_bonus.DROPOUT_COLS
        for p in hw1p1_bonus.DROPOUT_PS:
            allowed = hw1p1_bonus.FRACTION_SIGMAS * math.sqrt(n * p * (1 - p))
            low, high = math.ceil(n * p - allowed), math.floor(n * p + allowed)
            total += binom.cdf(low - 1, n, p) + binom.sf(high, n, p)  # P(count < low) + P(count > high)
    assert total < 1e-8, total


def assert_lost_exactly(result, lost):
    assert result.error is None, result.error
    assert result.assessment == "hw1p1_bonus" and result.max_score == 20
    assert [s.name for s in result.sections] == list(SECTION_POINTS)
    actually_lost = {s.name for s in result.sections if not s.passed}
    details = {s.name: [t.message for t in s.tests if not t.passed][:2] or s.message
               for s in result.sections if s.name in actually_lost ^ set(lost)}
    assert actually_lost == set(lost), details
    assert result.score == expected_score(lost)
    for section in result.sections:
        if section.name in lost:
            failing = [t for t in section.tests if not t.passed]
            assert failing and all(t.message.strip() for t in failing), section
        else:
            assert all(t.passed and not t.message for t in section.tests), section


@pytest.mark.parametrize("handin", BUGGY, ids=lambda h: h.name)
def test_buggy_bonus_handin_loses_exactly_its_sections(handin, tmp_path, executor):
    root = build_bonus_handin(tmp_path / "src", handin.edits)
    result = grade(tar_bytes(root), executor, suite=BONUS)
    assert_lost_exactly(result, handin.lost)
    assert_hints(result, handin.name)   # issue 20 item 5: no hint but the declared ones
    if handin.expect:
        messages = [t.message for s in result.sections for t in s.tests if not t.passed]
        messages += [s.message for s in result.sections if s.message]  # import errors: once per section
        assert any(handin.expect in m for m in messages), messages[:3]


@pytest.mark.parametrize("handin", CORRECT, ids=lambda h: h.name)
def test_correct_but_different_bonus_handin_scores_20(handin, tmp_path, executor):
    root = build_bonus_handin(tmp_path / "src", handin.edits, MOVES.get(handin.name))
    result = grade(package(root, handin.packaging, tmp_path), executor, suite=BONUS)
    assert_lost_exactly(result, set())
    assert_hints(result, handin.name)   # issue 20 item 5: no hint but the declared ones
    assert result.score == 20 == result.max_score


def test_a_missing_dropout_file_is_named(tmp_path, executor):
    root = build_bonus_handin(tmp_path / "src")
    (root / "mytorch" / "nn" / "dropout.py").unlink()
    result = grade(tar_bytes(root), executor, suite=BONUS)
    assert_lost_exactly(result, {"Dropout"})
    dropout = next(s for s in result.sections if s.name == "Dropout")
    assert dropout.message == "mytorch/nn/dropout.py is missing from your handin."  # said once, for the section


def test_an_hw1p1_handin_uploaded_to_the_bonus_is_told_so(tmp_path, executor):
    result = grade(tar_bytes(build_handin(tmp_path / "hw1p1")), executor, suite=BONUS)
    assert result.error is not None and result.error.code == "layout" and not result.sections
    assert result.error.message.startswith("Your archive has none of the bonus files")
    assert "is it your HW1P1 handin?" in result.error.message
    assert "tar cvf handin.tar mytorch" in result.error.message


def test_a_bonus_handin_uploaded_to_hw1p1_is_told_so(tmp_path, executor):
    result = grade(tar_bytes(build_bonus_handin(tmp_path / "bonus")), executor, suite=HW1P1)
    assert result.error is not None and result.error.code == "layout" and not result.sections
    assert "bonus assignment's layout" in result.error.message
