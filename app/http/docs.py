"""/docs: Swagger UI served from this service, so the API docs work offline and under a
Content-Security-Policy that allows only our own origin.

The files come from the fastapi-offline package (Swagger UI 5, which reads FastAPI's OpenAPI
3.1; swagger-ui-bundle stops at 4.x). Its own page starts Swagger UI with an inline script,
which our CSP forbids, so the page is ours and its start-up script is /static/docs/init.js.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_FILES = Path(fastapi_offline.__file__).parent / "static"

ASSETS = "/static/swagger-ui"
router = APIRouter(include_in_schema=False)

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MyTorch grading service: API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="stylesheet" href="/static/docs/docs.css">
</head>
<body>
<nav class="docs-back" aria-label="Site"><a href="/">← Back to the grader</a></nav>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/docs/init.js"></script>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
def docs() -> HTMLResponse:
    return HTMLResponse(PAGE)


def install(app: FastAPI) -> None:
    """Mount the assets (before the app's own /static) and add /docs."""
    app.mount(ASSETS, StaticFiles(directory=str(SWAGGER_FILES)), name="swagger-ui")
    app.include_router(router)
