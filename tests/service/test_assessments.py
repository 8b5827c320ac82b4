"""Assessment files name their grading suite; the queue carries it to the worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from app.course.assessments import load_file
from app.store.models import Job

from .conftest import REPO

HW1P1_TOML = (REPO / "assessments" / "hw1p1.toml").read_text()


def test_the_course_file_names_the_hw1p1_suite_and_takes_its_points_from_it():
    a = load_file(REPO / "assessments" / "hw1p1.toml")
    assert a.suite == "hw1p1" and a.max_score == 100
    assert list(a.sections) == ["Linear Layer", "Activation", "MLP0", "MLP1", "MLP4", "Loss", "SGD", "Batch Norm"]


def test_an_unknown_suite_is_refused_when_the_file_is_loaded(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text(HW1P1_TOML.replace('suite = "hw1p1"', 'suite = "hw1p2"'))
    with pytest.raises(ValidationError, match="unknown suite 'hw1p2'"):
        load_file(path)


def test_an_assessment_that_names_no_suite_is_refused(tmp_path):
    path = tmp_path / "nosuite.toml"
    path.write_text("\n".join(line for line in HW1P1_TOML.splitlines() if not line.startswith("suite")))
    with pytest.raises(ValidationError, match="suite"):
        load_file(path)


def test_points_are_not_declared_a_second_time_in_the_toml(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text(HW1P1_TOML + '\n[sections]\n"Linear Layer" = 15\n')
    with pytest.raises(ValidationError, match="declared once"):
        load_file(path)


def test_an_upload_limit_over_what_the_worker_unpacks_is_refused(tmp_path):
    """The check would accept an 11 MiB upload that the worker's unpack (10 MiB) then refuses."""
    path = tmp_path / "big.toml"
    path.write_text(HW1P1_TOML.replace("upload_max_bytes = 10_485_760", "upload_max_bytes = 11_534_336"))
    with pytest.raises(ValidationError, match="upload_max_bytes"):
        load_file(path)


def test_jobs_carry_the_assessments_suite_and_regrades_keep_it(service, tiny_tar):
    sub = service.submit("alice", "open", tiny_tar).json()
    service.drain()
    assert service.post("tina", f"{sub['url']}/regrade").json() == {"queued": 1}
    with service.db.read_session() as s:
        assert s.scalars(select(Job.suite).where(Job.submission_id == sub["id"])).all() == ["hw1p1", "hw1p1"]
    service.drain()
    view = service.get("alice", sub["url"]).json()
    assert view["status"] == "graded" and view["max_score"] == 100
