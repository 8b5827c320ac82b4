"""The JSON API under /api/v1 (OpenAPI at /docs): one module of routes per resource in routes/,
what they all start from in deps.py."""

from fastapi import APIRouter

from app.api.deps import ERRORS
from app.api.routes import accounts, scores, staff, submissions

router = APIRouter(prefix="/api/v1", responses=ERRORS)
router.include_router(accounts.router)
router.include_router(submissions.router)
router.include_router(scores.router)
router.include_router(staff.router)
