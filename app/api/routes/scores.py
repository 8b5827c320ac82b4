"""The scoreboard and the gradebook under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from app.api.deps import AssessmentDep, DbDep, StaffDep, UserDep
from app.course import standings
from app.course.views import ScoreboardRow, StaffScoreboardRow

router = APIRouter(tags=["scores"])


@router.get("/assessments/{slug}/scoreboard", response_model=list[StaffScoreboardRow | ScoreboardRow])
def scoreboard(user: UserDep, a: AssessmentDep, db: DbDep) -> list[ScoreboardRow]:
    """TAs see names; students see the same rows by nickname."""
    with db.read_session() as s:
        return standings.scoreboard(s, a, user)


@router.get("/assessments/{slug}/gradebook.csv", response_class=PlainTextResponse)
def gradebook(user: StaffDep, a: AssessmentDep, db: DbDep) -> Response:
    with db.read_session() as s:
        text = standings.gradebook_csv(s, a)
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{a.slug}-gradebook.csv"'})
