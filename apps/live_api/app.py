"""The live API app factory and its ``python -m apps.live_api`` entry (uvicorn).

``create_app`` only wires: it builds the services onto ``app.state`` (store, fan-out, metrics,
sessions, media plane, history writer), includes one router per resource and installs the one
error handler. The routes live in their modules (``environments.py``, ``session_routes.py``,
``sites.py``, ...), startup's warm-up and the service factories in ``startup.py``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from spoton.redact import install_log_redaction
from spoton.storage.catalog import LiveFileCache
from spoton.storage.lake import ParquetLake
from spoton.live.history import HistoryConfig, LiveHistoryWriter

from apps.live_api import (environments, errors, exposure, health, history, me, media, overlay, session_routes,
                           site_jobs, sites, startup, uploads, webrtc, ws)
from apps.live_api.auth import AuthConfig, Role
from apps.live_api.errors import error_responses
from apps.live_api.fanout import Fanout, Hub
from apps.live_api.health import LiveMetrics, Readiness
from apps.live_api.logs import configure_logging
from apps.live_api.observe import RequestObservation
from apps.live_api.sessions import SHUTDOWN_TIMEOUT_S, SessionManager
from apps.live_api.settings import Settings

LIVE_FILE_CACHE_BYTES = 256 * 1024 * 1024  # decoded live history files of an S3 lake (history REST)


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Start the fan-out and the media plane, warm up in the background; on shutdown stop the
    sessions, requeue a running site job and flush the history."""
    state = app.state
    loop = asyncio.get_running_loop()
    await state.fanout.start()
    state.fanout.on_remote_command = state.sessions.remote_command
    await state.media.start()
    threading.Thread(target=startup.warm_up, args=(app,), name="warm-up", daemon=True).start()
    yield
    await state.media.stop()
    await loop.run_in_executor(None, state.sessions.stop_all)
    if getattr(state, "site_jobs", None) is not None:  # a running job goes back to queued
        await loop.run_in_executor(None, state.site_jobs.close)
    if state.history_writer is not None:
        await loop.run_in_executor(None, state.history_writer.close)
    await state.fanout.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = (settings or Settings.from_env()).check()
    app = FastAPI(title="SpotOn live API", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)  # exposure.add_docs: per setting
    errors.install(app)
    state = app.state
    store = settings.open_store()
    hub = Hub(settings.client_queue_size)
    fanout = Fanout(hub, settings.instance_id, settings.redis_url, settings.redis_prefix)
    metrics = LiveMetrics()
    state.settings, state.store, state.hub, state.fanout = settings, store, hub, fanout
    state.metrics, state.readiness, state.auth = metrics, Readiness(), settings.auth
    state.detector = state.embedder = None
    state.storage_checks = startup.storage_checks(settings)
    lake = settings.open_lake()  # a folder, or S3 beside an S3 store (live history and the history REST)
    state.lake = ParquetLake(lake)
    state.live_file_cache = LiveFileCache(LIVE_FILE_CACHE_BYTES) if settings.lake_uri else None
    state.media = webrtc.MediaPlane(webrtc.MediaSettings(
        max_peers=settings.webrtc_max_peers, max_peers_per_session=settings.webrtc_max_peers_per_session,
        ice_hosts=settings.webrtc_ice_hosts), session_alive=lambda session_id: session_id in state.sessions.sessions)
    state.history_writer = None
    if settings.live_history:
        writer = state.history_writer = LiveHistoryWriter(
            lake, HistoryConfig(settings.history_flush_s),
            on_failure=lambda _: metrics.history_write_failures.inc())
        metrics.history_rows_dropped.set_function(lambda: writer.stats.rows_dropped)
    state.sessions = SessionManager(
        store, startup.shared_detector(app, metrics), fanout, metrics, perception=settings.perception(),
        instance_id=settings.instance_id,
        max_sessions=settings.max_sessions, max_tick_rate_hz=settings.max_tick_rate_hz,
        status_interval_s=settings.status_interval_s,
        resolve_upload=lambda upload_id: uploads.resolve_upload(upload_id, store),
        allow=settings.source_allow_list(), frame_sink=state.media.put, history=state.history_writer,
        appearance=startup.appearance_sampler(app, settings.appearance_every_frames),
        identity_share=startup.identity_share(settings))

    app.include_router(uploads.router, responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422))
    app.include_router(media.router, responses=error_responses(401, 403, 404, 416, 422))
    app.include_router(webrtc.router, responses=error_responses(400, 401, 403, 404, 406, 409, 413, 415, 429))
    app.include_router(sites.router)
    app.include_router(site_jobs.router)
    app.include_router(me.router)
    app.include_router(history.router, responses=error_responses(401, 403, 404, 422, 503))
    app.include_router(session_routes.tick_router)
    app.include_router(environments.router)
    app.include_router(session_routes.router)
    app.include_router(health.router)
    exposure.add_metrics(app, settings.expose_metrics)
    exposure.add_docs(app, settings.expose_docs)
    app.include_router(ws.router)
    overlay.mount(app)  # the overlay page at /, after the API routes

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["Authorization", "Content-Type", "Range"],
                           expose_headers=["Content-Range", "Accept-Ranges", "Content-Length", "Location", "X-Request-ID"])
    app.add_middleware(RequestObservation, metrics=metrics)  # outermost: every answer gets a request id
    return app


def main() -> None:
    """``python -m apps.live_api``: serve on SPOTON_LIVE_HOST:SPOTON_LIVE_PORT (default 127.0.0.1:8000)."""
    import uvicorn

    install_log_redaction()  # camera passwords and ?token= values never reach a log line
    configure_logging(os.environ.get("SPOTON_LOG_FORMAT", "console"))
    settings = Settings.from_env()
    if not settings.auth.api_keys and not settings.auth.jwt_secret:
        key = secrets.token_urlsafe(18)
        settings = dataclasses.replace(settings, auth=AuthConfig(api_keys={key: Role.admin}))
        print(f"No SPOTON_API_KEYS / SPOTON_JWT_SECRET set: generated an admin key for this run only:\n"
              f"  {key}\n  overlay page: http://{settings.host}:{settings.port}/?token={key}", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", log_config=None,
                ws_ping_interval=20, ws_ping_timeout=20, ws_max_size=16 * settings.ws_max_message_bytes,
                ws_per_message_deflate=settings.ws_compression,
                timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S)
