"""The HTTP door of the upload use case (app.course.uploads): an `Upload` from the request's
headers, and the reader of its multipart `handin` field, for the web form and the API alike."""

from __future__ import annotations

from fastapi import Request

from app.course.assessments import Assessment
from app.course.uploads import FILE_FIELD, Handin, Upload, no_handin
from app.http.bodylimits import received_at
from app.http.sessions import read_form
from app.store.models import User, utcnow


def upload_from(request: Request, a: Assessment, user: User) -> Upload:
    length = request.headers.get("content-length", "")

    async def read(cap: int) -> Handin:
        form = await read_form(request)   # the one parse of this request's form, with its limits
        file = form.get(FILE_FIELD)
        if file is None or isinstance(file, str):
            raise no_handin()
        data = await file.read(cap + 1)
        return Handin(data, file.filename or "handin.tar", received_at(request.scope))

    return Upload(a, user, utcnow(), int(length) if length.isdigit() else None, read)
