"""The cases learnt from real handins (catalogue_real.py): buggy ones lose exactly their sections,
like the main catalogue's, and say what is wrong; correct-but-different ones score 100."""
import pytest
from catalogue import build_handin, tar_bytes
from catalogue_real import BUGGY_REAL, CORRECT_REAL
from hints_expected import assert_hints
from test_catalogue import assert_lost_exactly

from grader.grade import grade
from grader.suites.hw1p1 import SUITE as HW1P1


def test_real_cases_are_distinct_from_the_main_catalogue():
    from catalogue import BUGGY

    names = [h.name for h in BUGGY_REAL]
    assert len(set(names)) == len(names)
    assert not set(names) & {h.name for h in BUGGY}
    assert not {h.edits for h in BUGGY_REAL} & {h.edits for h in BUGGY}


@pytest.mark.parametrize("handin", BUGGY_REAL, ids=lambda h: h.name)
def test_real_buggy_handin_loses_exactly_its_sections(handin, tmp_path, executor):
    root = build_handin(tmp_path / "src", handin.edits)
    result = grade(tar_bytes(root), executor, suite=HW1P1)
    assert_lost_exactly(result, handin.lost)
    assert_hints(result, handin.name)   # issue 20 item 5: no hint but the declared ones
    messages = [t.message for s in result.sections for t in s.tests if not t.passed]
    assert any(handin.expect in m for m in messages), messages[:3]


@pytest.mark.parametrize("handin", CORRECT_REAL, ids=lambda h: h.name)
def test_real_correct_but_different_handin_scores_100(handin, tmp_path, executor):
    root = build_handin(tmp_path / "src", handin.edits)
    result = grade(tar_bytes(root), executor, suite=HW1P1)
    assert_lost_exactly(result, set())
    assert_hints(result, handin.name)   # issue 20 item 5: no hint but the declared ones
    assert result.score == 100 == result.max_score
