"""One upload use case (app/course/uploads.py) behind both doors: the web form and the JSON API refuse
the same uploads with the same status and sentence, and store accepted ones the same way."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.course.uploads import too_large
from app.store.models import Job, Submission


def form_upload(client, csrf: str, slug: str, data: bytes):
    return client.post(f"/assessments/{slug}/submit", data={"csrf_token": csrf},
                       files={"handin": ("handin.tar", data)}, follow_redirects=False)


def page_error(response) -> str:
    text = response.text
    start = text.index('id="server-error">') + len('id="server-error">')
    return html.unescape(text[start:text.index("</p>", start)])


@pytest.mark.parametrize("slug, data", [
    ("open", b"just some text, not an archive"),    # the archive check
    ("capped", None),                                # the size limit (good_tar is over the cap)
    ("closed", b"tiny"),                             # the rules, before the body is read
    ("future", b"tiny"),
])
def test_form_and_api_refuse_alike(service, browser_session, good_tar, slug, data):
    client, csrf = browser_session
    data = good_tar if data is None else data
    api = service.submit("alice", slug, data)
    refused = form_upload(client, csrf, slug, data)
    assert api.status_code in (403, 413, 422)
    # the form redirects to the assessment page, which says the same thing once (issue 20 item 9)
    assert refused.status_code == 303 and refused.headers["location"].startswith(f"/assessments/{slug}?shown=")
    page = client.get(refused.headers["location"])
    assert page.status_code == 200 and page_error(page) == api.json()["message"]
    assert 'id="server-error"' not in client.get(refused.headers["location"]).text   # a reload: the plain page
    with service.db.read_session() as s:   # neither door stored anything
        assert s.scalars(select(Submission)).all() == []


def test_form_and_api_store_alike(service, browser_session, tiny_tar):
    client, csrf = browser_session
    api = service.submit("alice", "open", tiny_tar)
    page = form_upload(client, csrf, "open", tiny_tar)
    assert api.status_code == 202 and page.status_code == 303
    page_id = int(re.search(r"submitted=(\d+)", page.headers["location"]).group(1))
    with service.db.read_session() as s:
        by_api, by_form = s.get(Submission, api.json()["id"]), s.get(Submission, page_id)
        assert (by_api.version, by_api.status, by_api.blob_sha256) == (by_form.version, by_form.status,
                                                                       by_form.blob_sha256)
        jobs = s.scalars(select(Job).where(Job.submission_id.in_([by_api.id, by_form.id]))).all()
        assert sorted(j.kind for j in jobs) == ["submit", "submit"]



@pytest.mark.parametrize(("limit", "said"), [(10 << 20, "10 MiB"), (500 << 10, "500 KiB"),
                                             (1536 << 10, "1.5 MiB"), (900, "900 bytes")])
def test_a_too_large_refusal_states_the_limit_as_a_student_reads_it(limit, said):
    """A limit under 1 MiB read "larger than 0 MiB" (the bytes were shifted by 20)."""
    refusal = too_large(SimpleNamespace(upload_max_bytes=limit))
    assert (refusal.status, refusal.code) == (413, "too_large")
    assert refusal.message == f"The upload is larger than {said}."
