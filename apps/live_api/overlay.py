"""The web pages: ``/`` the overlay (``static/index.html``), ``/sites`` the site editor
(``static/sites.html``), ``/static/*`` their scripts and styles.

The page itself is public (it holds no data); everything it shows comes from the API with the
token the user enters (kept in the browser's localStorage).
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")


def mount(app: FastAPI) -> None:
    """Add the page routes; call after the API routes (``/static`` is a mount)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def overlay_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/sites", include_in_schema=False)
    def sites_page() -> FileResponse:
        """Sites, cameras, calibration, region and zones (``static/sites.html``)."""
        return FileResponse(STATIC_DIR / "sites.html", headers={"Cache-Control": "no-cache"})
