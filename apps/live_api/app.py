"""The live API app factory and its ``python -m apps.live_api`` entry (uvicorn).

REST under ``/api/v1`` (environments, sessions, the tick schema), the session WebSocket, health
and metrics. Startup runs in a background thread: build the sample environment into the store
when it is missing, load the detector and warm it up on a real frame; ``/readyz`` and
``POST /sessions`` answer 503 until that is done.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, Field, StrictFloat

from spoton.redact import install_log_redaction
from spoton.environment import scan_sub_videos
from spoton.site import storage as site_storage
from spoton.live.sources import SourceError, SourceSpec
from spoton.storage.store import LocalStore, ObjectStore, S3Retry
from spoton.live.tick import TICK_JSON_SCHEMA, TICK_SCHEMA_URL_PATH
from spoton.live.history import HistoryConfig, LiveHistoryWriter

from spoton.live.identity import LIVE_CROP_SIZE, AppearanceSampler, RedisIdentityShare

from apps.live_api import errors, exposure, health, history, me, media, overlay, site_jobs, sites, uploads, webrtc, ws
from apps.live_api.api_models import Cameras, Environments, SessionCreated, Sessions, SessionStatus, SessionStopped
from apps.live_api.auth import AuthConfig, Principal, Role, require_role
from apps.live_api.errors import error_responses
from apps.live_api.fanout import Fanout, Hub
from apps.live_api.health import LiveMetrics, Readiness
from apps.live_api.logs import configure_logging
from apps.live_api.observe import RequestObservation, TimedDetector
from apps.live_api.sessions import SHUTDOWN_TIMEOUT_S, CommandError, SessionError, SessionManager, parse_command
from apps.live_api.settings import Settings

log = logging.getLogger(__name__)
API = "/api/v1"


class SourceBody(BaseModel):
    kind: Literal["file", "store", "upload", "rtsp", "http", "webrtc"]
    uri: str


class SessionBody(BaseModel):
    environment: str = Field(description="an environment of GET /api/v1/environments")
    cameras: dict[str, SourceBody] | None = Field(
        None, description="per camera, its source; omitted: every camera on its first sub-video")
    tick_rate_hz: StrictFloat | None = Field(None, description="ticks per second at most (default SPOTON_TICK_RATE)")


def _build_sample(store: ObjectStore, name: str, max_source_frames: int | None, cache_dir: Path) -> None:
    """Build the sample environment into ``store``; an S3 store gets it through a temporary folder."""
    from spoton.artifacts import fetch_sample_video
    from spoton.sample.builder import build_sample_environment

    if isinstance(store, LocalStore):
        build_sample_environment(fetch_sample_video(cache_dir), store.root, name, max_source_frames=max_source_frames)
        return
    with tempfile.TemporaryDirectory(prefix="spoton-sample-") as work:
        root = Path(work)
        build_sample_environment(fetch_sample_video(cache_dir), root, name, max_source_frames=max_source_frames)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                store.upload_file(path, path.relative_to(root).as_posix())


def _store_check(settings: Settings):
    """The store part of ``/readyz``: a writable folder, or a reachable bucket (never its path), asked
    once with short timeouts (a probe must not wait out the store client's retries)."""
    store = settings.open_store(S3Retry(max_attempts=1, connect_timeout_s=2.0, read_timeout_s=2.0))
    if isinstance(store, LocalStore):
        def check() -> tuple[bool, str]:
            ok = store.root.is_dir() and os.access(store.root, os.R_OK | os.W_OK)
            return ok, f"store {'reachable' if ok else 'missing or not writable'}"
        return check

    def check_bucket() -> tuple[bool, str]:
        try:
            store.client.head_bucket(Bucket=store.bucket)
            return True, "store reachable (S3)"
        except Exception as exc:  # any client or connection error: not ready, said without secrets
            return False, f"store (S3) not reachable: {type(exc).__name__}"
    return check_bucket


def _warm_up(app: FastAPI) -> None:
    """Build what is missing, load and exercise the detector, then mark the app ready."""
    settings: Settings = app.state.settings
    readiness: Readiness = app.state.readiness
    store: ObjectStore = app.state.store
    try:
        if settings.build_sample_environment:  # a startup convenience: sessions never import the sample
            from spoton.sample import ENV_NAME

            if ENV_NAME not in site_storage.list_environments(store):
                readiness.detail = f"building the sample environment {ENV_NAME!r} into the store"
                _build_sample(store, ENV_NAME, settings.sample_max_source_frames, settings.cache_dir)
        readiness.checks["environments"] = site_storage.list_environments(store)
        readiness.detail = "loading and warming up the detector"
        from spoton.video import iter_frames

        detector = settings.perception().build_detector()
        videos = [k for k in store.list_keys() if k.endswith(".mp4")]
        frame = (next(iter_frames(store.video_source(videos[0]))).image if videos
                 else np.zeros((480, 640, 3), np.uint8))
        for _ in range(2):
            detector.detect(frame)
        app.state.detector = detector
        readiness.checks["detector"] = f"nanodet warmed up on a {frame.shape[1]}x{frame.shape[0]} frame"
        if settings.appearance_every_frames > 0:
            readiness.detail = "loading the appearance embedder"
            try:
                from spoton.models.embedder import build_embedder

                perception = settings.perception()
                embedder = build_embedder(perception.embedder, perception.embedder_weights, crop_size=LIVE_CROP_SIZE,
                                          threads=perception.threads, device=perception.device,
                                          cache_dir=perception.cache_dir)
                embedder.embed(frame, np.array([[0, 0, 64, 128]], np.float32))
                app.state.embedder = embedder
                readiness.checks["appearance"] = f"a crop per track every {settings.appearance_every_frames} frames"
            except Exception as exc:  # live ids fall back to floor position only
                log.warning("appearance embedder unavailable (%s: %s): live global ids use position only",
                            type(exc).__name__, exc)
                readiness.checks["appearance"] = "unavailable: live global ids use floor position only"
        readiness.ready = True
        readiness.detail = "ready"
        log.info("live API ready (store %s)", store.uri)
    except Exception as exc:  # /readyz shows it; /healthz stays up so it can be read
        log.exception("live API startup failed")
        readiness.detail = f"startup failed: {type(exc).__name__}: {exc}"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = (settings or Settings.from_env()).check()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await app.state.fanout.start()
        app.state.fanout.on_remote_command = _remote_command
        await app.state.media.start()
        threading.Thread(target=_warm_up, args=(app,), name="warm-up", daemon=True).start()
        yield
        await app.state.media.stop()
        await asyncio.get_running_loop().run_in_executor(None, app.state.sessions.stop_all)
        if getattr(app.state, "site_jobs", None) is not None:  # a running job goes back to queued
            await asyncio.get_running_loop().run_in_executor(None, app.state.site_jobs.close)
        if history_writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, history_writer.close)
        await app.state.fanout.stop()

    app = FastAPI(title="SpotOn live API", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)  # exposure.add_docs: per setting
    errors.install(app)
    store = settings.open_store()
    hub = Hub(settings.client_queue_size)
    fanout = Fanout(hub, settings.instance_id, settings.redis_url, settings.redis_prefix)
    metrics = LiveMetrics()
    app.state.settings, app.state.store, app.state.hub, app.state.fanout = settings, store, hub, fanout
    app.state.metrics, app.state.readiness, app.state.auth = metrics, Readiness(), settings.auth
    app.state.detector = app.state.embedder = None

    app.state.check_store = _store_check(settings)

    def shared_detector():
        if app.state.detector is None:
            raise SessionError(503, "not ready: the detector is still loading (see /readyz)")
        return TimedDetector(app.state.detector, metrics)

    def appearance_sampler() -> AppearanceSampler | None:
        embedder = app.state.embedder
        return None if embedder is None else AppearanceSampler(embedder, settings.appearance_every_frames)

    identity_share = None
    if settings.redis_url:  # live global ids and appearances shared by the instances, per environment
        import redis

        identity_redis = redis.Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

        def identity_share(environment: str) -> RedisIdentityShare:
            return RedisIdentityShare(identity_redis, environment, settings.redis_prefix)

    app.include_router(uploads.router, responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422))
    app.include_router(media.router, responses=error_responses(401, 403, 404, 416, 422))
    app.include_router(webrtc.router, responses=error_responses(400, 401, 403, 404, 406, 409, 413, 415, 429))
    app.state.media = webrtc.MediaPlane(webrtc.MediaSettings(
        max_peers=settings.webrtc_max_peers, max_peers_per_session=settings.webrtc_max_peers_per_session,
        ice_hosts=settings.webrtc_ice_hosts), session_alive=lambda session_id: session_id in sessions.sessions)
    app.include_router(sites.router)
    app.include_router(site_jobs.router)
    app.include_router(me.router)

    history_writer = None
    if settings.live_history:
        history_writer = LiveHistoryWriter(LocalStore(settings.lake), HistoryConfig(settings.history_flush_s),
                                           on_failure=lambda _: metrics.history_write_failures.inc())
        metrics.history_rows_dropped.set_function(lambda: history_writer.stats.rows_dropped)
    app.state.lake = settings.lake
    app.include_router(history.router, responses=error_responses(401, 403, 404, 422, 503))
    sessions = SessionManager(store, shared_detector, fanout, metrics, perception=settings.perception(),
                              instance_id=settings.instance_id,
                              max_sessions=settings.max_sessions, max_tick_rate_hz=settings.max_tick_rate_hz,
                              status_interval_s=settings.status_interval_s,
                              resolve_upload=lambda upload_id: uploads.resolve_upload(upload_id, store),
                              allow=settings.source_allow_list(), frame_sink=app.state.media.put,
                              history=history_writer, appearance=appearance_sampler, identity_share=identity_share)
    app.state.sessions = sessions

    async def _remote_command(session_id: str, data: dict) -> None:
        """A command sent to another instance for a session this instance owns."""
        if session_id not in sessions.sessions:
            return
        if data.get("type") == "__delete__":
            await asyncio.get_running_loop().run_in_executor(None, sessions.delete, session_id)
            return
        try:
            sessions.sessions[session_id].apply(parse_command(data))
        except CommandError:
            log.warning("ignored a bad forwarded command for %s: %r", session_id, data)

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["Authorization", "Content-Type", "Range"],
                           expose_headers=["Content-Range", "Accept-Ranges", "Content-Length", "Location", "X-Request-ID"])
    app.add_middleware(RequestObservation, metrics=metrics)  # outermost: every answer gets a request id

    @app.get(TICK_SCHEMA_URL_PATH, tags=["live"], response_model=dict)
    def tick_schema() -> dict:
        """The JSON Schema every tick validates against (stable URL)."""
        return TICK_JSON_SCHEMA

    @app.get(f"{API}/environments", tags=["live"], response_model=Environments,
             responses=error_responses(401, 403))
    def list_environments(_: Principal = Depends(require_role(Role.viewer))) -> dict:
        environments = []
        found = scan_sub_videos(store)
        for name in site_storage.list_environments(store):
            env = sessions.environment(name)
            environments.append({"name": name, "fps": env.fps, "cameras": list(env.camera_names),
                                 "segments": len(found.get(name, {}))})
        return {"environments": environments}

    @app.get(f"{API}/environments/{{environment}}/cameras", tags=["live"], response_model=Cameras,
             responses=error_responses(401, 403, 404))
    def list_cameras(environment: str, _: Principal = Depends(require_role(Role.viewer))) -> dict:
        env = sessions.environment(environment)
        cameras = []
        for camera in env.cameras:
            videos = [k for k in store.list_keys(f"{environment}/{camera.name}/") if k.endswith(".mp4")]
            cameras.append({"name": camera.name, "size": {"w": camera.resolution[0], "h": camera.resolution[1]},
                            "calibrated": camera.calibration is not None,
                            "sub_videos": videos, "media_urls": [media.media_url(k) for k in videos],
                            "default_source": {"kind": "store", "uri": videos[0]} if videos else None})
        return {"environment": environment, "cameras": cameras}

    @app.post(f"{API}/sessions", status_code=201, tags=["live"], response_model=SessionCreated,
              responses=error_responses(400, 401, 403, 404, 422, 429, 502, 503))
    async def create_session(body: SessionBody, request: Request,
                             _: Principal = Depends(require_role(Role.admin))) -> dict:
        try:
            sources = ({cam: SourceSpec(src.kind, src.uri) for cam, src in body.cameras.items()}
                       if body.cameras else None)
        except SourceError as exc:
            raise HTTPException(422, str(exc)) from None
        rate = body.tick_rate_hz if body.tick_rate_hz is not None else settings.default_tick_rate_hz
        session = await asyncio.get_running_loop().run_in_executor(
            None, sessions.create, body.environment, sources, rate)
        scheme = "wss" if request.url.scheme == "https" else "ws"
        path = f"/ws/sessions/{session.id}"
        return {"session_id": session.id, "ws_path": path, "ws_url": f"{scheme}://{request.url.netloc}{path}",
                "status": session.status()}

    def not_here(session_id: str) -> HTTPException:
        """404, or 503 while Redis is down: the session may run on another instance."""
        if fanout.down_reason is not None:
            return HTTPException(503, f"session {session_id} is not on this instance and {fanout.down_reason}: "
                                      "retry later")
        return HTTPException(404, f"no session {session_id}: list them with GET {API}/sessions")

    @app.get(f"{API}/sessions", tags=["live"], response_model=Sessions,
             responses=error_responses(401, 403))
    async def list_sessions(_: Principal = Depends(require_role(Role.viewer))) -> dict:
        """This instance's sessions and, through Redis, the others'; ``partial`` while Redis is down."""
        local = [s.status() for s in list(sessions.sessions.values())]
        remote = [s for s in await fanout.remote_statuses() if s["session_id"] not in sessions.sessions]
        listing = {"sessions": local + remote, "partial": fanout.down_reason is not None}
        if listing["partial"]:
            listing["detail"] = f"only this instance's sessions: {fanout.down_reason}"
        return listing

    @app.get(f"{API}/sessions/{{session_id}}", tags=["live"], response_model=SessionStatus,
             responses=error_responses(401, 403, 404, 503))
    async def get_session(session_id: str, _: Principal = Depends(require_role(Role.viewer))) -> dict:
        session = sessions.get(session_id)
        status = session.status() if session is not None else await fanout.remote_status(session_id)
        if status is None:
            raise not_here(session_id)
        return status

    @app.delete(f"{API}/sessions/{{session_id}}", tags=["live"], response_model=SessionStopped,
                responses=error_responses(401, 403, 404, 503))
    async def delete_session(session_id: str, _: Principal = Depends(require_role(Role.admin))) -> dict:
        """Stop a session; ``state`` is its final one ("stopped" or "failed"), or "stopping" elsewhere."""
        state = await asyncio.get_running_loop().run_in_executor(None, sessions.delete, session_id)
        if state is not None:
            return {"session_id": session_id, "state": state}
        if await fanout.remote_status(session_id) is not None and \
                await fanout.send_remote_command(session_id, {"type": "__delete__"}):
            return {"session_id": session_id, "state": "stopping"}
        raise not_here(session_id)

    app.include_router(health.router)
    exposure.add_metrics(app, settings.expose_metrics)
    exposure.add_docs(app, settings.expose_docs)
    app.include_router(ws.router)
    overlay.mount(app)  # the overlay page at /, after the API routes
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
