"""Server-rendered pages (Jinja2, autoescaped) for students and TAs, built on the service's modules
(app.course.submissions, app.course.standings, app.course.regrades, app.course.extensions, app.course.uploads).

create_app includes `router` and mounts STATIC_DIR at /static.
"""

from pathlib import Path

from fastapi import APIRouter

from app.web import similarity, source, staff, student

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(include_in_schema=False)
router.include_router(student.router)
router.include_router(staff.router)
router.include_router(source.router)
router.include_router(similarity.router)
