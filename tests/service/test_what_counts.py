"""What counts (issue 20 item 8): an HW1P1 upload missing a graded file entirely is refused at
upload, listing the missing files, and never replaces the score that counts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from support import make_tar, reference_files

from app.store.models import Submission


def _without(prefix: str) -> bytes:
    return make_tar({p: data for p, data in reference_files().items() if not p.startswith(prefix)})


@pytest.mark.parametrize("door", ["api", "form"])
def test_a_tar_without_models_is_refused_listing_the_missing_files_and_the_counted_score_stays(
        service, browser_session, good_tar, door):
    assert service.submit("bob", "open", good_tar).status_code == 202
    service.drain()
    before = service.get("tina", "/api/v1/assessments/open/scoreboard").json()
    assert before[0]["username"] == "bob" and before[0]["score"] == 105

    if door == "api":
        r = service.submit("bob", "open", _without("models/"))
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "missing_files"
        message = r.json()["message"]
    else:
        client, csrf = browser_session
        r = client.post("/assessments/open/submit", data={"csrf_token": csrf},
                        files={"handin": ("handin.tar", _without("models/"))}, follow_redirects=False)
        assert r.status_code == 422, r.text
        message = r.text
    assert "models/mlp.py" in message and "mytorch/nn/linear.py" not in message

    with service.db.read_session() as s:   # nothing stored, nothing queued
        assert s.scalar(select(func.count()).select_from(Submission)) == 1
    assert service.get("tina", "/api/v1/assessments/open/scoreboard").json() == before


def test_every_missing_graded_file_is_listed_once(service):
    files = {p: d for p, d in reference_files().items()
             if p not in ("mytorch/nn/batchnorm.py", "mytorch/optim/sgd.py")}
    r = service.submit("bob", "open", make_tar(files))
    assert r.status_code == 422
    message = r.json()["message"]
    assert "2 graded file(s): mytorch/nn/batchnorm.py, mytorch/optim/sgd.py." in message, message
