"""/healthz (alive), /readyz (models warmed up, store reachable) and /metrics (Prometheus)."""
from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)


class LiveMetrics:
    """The service's Prometheus metrics, on a registry of its own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge("spoton_live_sessions_active", "sessions running on this instance", registry=r)
        self.ws_clients = Gauge("spoton_live_websocket_clients", "connected WebSocket clients", registry=r)
        self.fps = Gauge("spoton_live_processing_fps", "processed instants per second", ["session"], registry=r)
        self.latency = Histogram("spoton_live_frame_to_tick_latency_seconds",
                                 "from a frame being available to its tick being handed to the fan-out",
                                 buckets=LATENCY_BUCKETS_S, registry=r)
        self.frames_processed = Counter("spoton_live_frames_processed", "camera frames processed",
                                        ["session"], registry=r)
        self.dropped_frames = Counter("spoton_live_dropped_frames", "stale frames dropped at ingest",
                                      ["session", "camera"], registry=r)
        self.ticks = Counter("spoton_live_ticks_published", "ticks published", ["session"], registry=r)
        self.client_ticks_dropped = Counter("spoton_live_client_ticks_dropped",
                                            "ticks dropped from slow clients' queues", registry=r)
        self.commands = Counter("spoton_live_commands", "client commands by outcome", ["outcome"], registry=r)
        self.ptz_commands = Counter("spoton_live_ptz_commands", "PTZ commands sent, by who drove (auto, manual)",
                                    ["driver"], registry=r)
        self.time_to_lock = Histogram("spoton_live_time_to_lock_seconds", "from choosing a target to tracking it",
                                      buckets=LATENCY_BUCKETS_S, registry=r)
        self.reacquisitions = Counter("spoton_live_reacquisitions", "targets found again after being lost",
                                      registry=r)
        self.fraction_locked = Gauge("spoton_live_fraction_locked", "time locked on the target over time with one",
                                     ["session"], registry=r)

    def forget_session(self, session_id: str) -> None:
        for metric in (self.fps, self.frames_processed, self.ticks, self.fraction_locked):
            try:
                metric.remove(session_id)
            except KeyError:
                pass


@dataclass
class Readiness:
    """Set by the startup thread; /readyz answers 503 with ``detail`` until ``ready``."""

    ready: bool = False
    detail: str = "starting: building the sample environment and warming up the models"
    checks: dict = field(default_factory=dict)


router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    readiness: Readiness = state.readiness
    store_ok, store_detail = state.check_store()
    checks = {**readiness.checks, "store": store_detail}
    if readiness.ready and store_ok:
        return JSONResponse({"status": "ready", "checks": checks})
    detail = readiness.detail if not readiness.ready else f"store unreachable: {store_detail}"
    return JSONResponse({"status": "not ready", "detail": detail, "checks": checks}, status_code=503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    live: LiveMetrics = request.app.state.metrics
    live.sessions_active.set(request.app.state.sessions.active_count)
    live.ws_clients.set(request.app.state.hub.client_count)
    return Response(generate_latest(live.registry), media_type=CONTENT_TYPE_LATEST)
