"""The scoreboard and the gradebook under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from app.api import deps
from app.api.deps import StaffDep, UserDep
from app.course import standings

router = APIRouter(tags=["scores"])


@router.get("/assessments/{slug}/scoreboard")
def scoreboard(slug: str, request: Request, user: UserDep) -> list[dict]:
    """TAs see names; students see the same rows by nickname."""
    a = deps.find_assessment(request, slug)
    with deps.database(request).read_session() as s:
        return standings.scoreboard(s, a, user)


@router.get("/assessments/{slug}/gradebook.csv", response_class=PlainTextResponse)
def gradebook(slug: str, request: Request, user: StaffDep) -> Response:
    a = deps.find_assessment(request, slug)
    with deps.database(request).read_session() as s:
        text = standings.gradebook_csv(s, a)
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{slug}-gradebook.csv"'})
