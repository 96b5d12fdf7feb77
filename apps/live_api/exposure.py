"""Who may read ``/metrics`` and the API docs (``/docs``, ``/redoc``, ``/openapi.json``).

Each is ``public``, ``auth`` (any valid token: viewer or higher) or ``off`` (404), set by
``SPOTON_EXPOSE_METRICS`` / ``SPOTON_EXPOSE_DOCS``; their defaults follow ``SPOTON_DEPLOYMENT``:
``dev`` (default) both public, ``prod`` metrics behind auth and docs off (see ``settings.py``).
Prometheus sends the token as ``authorization: {credentials: ...}`` in its scrape config; a
browser opens ``/docs?token=...`` (the page then fetches ``/openapi.json`` with that token).
"""
from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from apps.live_api import health
from apps.live_api.auth import Role, require_role, viewer_by_header_or_query

Exposure = Literal["public", "auth", "off"]
EXPOSURES: tuple[str, ...] = ("public", "auth", "off")
OPENAPI_URL = "/openapi.json"


def add_metrics(app: FastAPI, exposure: Exposure) -> None:
    if exposure == "off":
        return
    guard = [Depends(require_role(Role.viewer))] if exposure == "auth" else []
    app.add_api_route("/metrics", health.metrics, methods=["GET"], include_in_schema=False, dependencies=guard)


def add_docs(app: FastAPI, exposure: Exposure) -> None:
    """The OpenAPI document and its two viewers (the app is created with FastAPI's own turned off)."""
    if exposure == "off":
        return
    guard = [Depends(viewer_by_header_or_query)] if exposure == "auth" else []

    def openapi_url(request: Request) -> str:
        token = request.query_params.get("token") if exposure == "auth" else None
        return f"{OPENAPI_URL}?token={quote(token, safe='')}" if token else OPENAPI_URL

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=guard)
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    def swagger_page(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url(request), title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False, dependencies=guard)
    def redoc_page(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url(request), title=f"{app.title} - ReDoc")
