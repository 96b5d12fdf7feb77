"""/healthz (alive), /readyz (models warmed up, store and lake reachable) and /metrics (Prometheus).

Series that name a session (label ``session``) are dropped when the session ends
(``forget_session``), so a long-running instance does not accumulate them. No label ever holds
a raw path, a token or a source URI: HTTP series use the route template.
"""
from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field

from apps.live_api.errors import current_request_id

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INFERENCE_BUCKETS_S = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
SEND_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LiveMetrics:
    """The service's Prometheus metrics, on a registry of its own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge("spoton_live_sessions_active", "sessions running on this instance", registry=r)
        self.ws_clients = Gauge("spoton_live_websocket_clients", "connected WebSocket clients", registry=r)
        self.fps = Gauge("spoton_live_processing_fps", "processed instants per second", ["session"], registry=r)
        self.latency = Histogram("spoton_live_frame_to_tick_latency_seconds",
                                 "from a frame being available to the tick describing it being handed to "
                                 "the fan-out",
                                 buckets=LATENCY_BUCKETS_S, registry=r)
        self.frames_processed = Counter("spoton_live_frames_processed", "camera frames processed",
                                        ["session"], registry=r)
        self.dropped_frames = Counter("spoton_live_dropped_frames", "stale frames dropped at ingest",
                                      ["session", "camera"], registry=r)
        self.ticks = Counter("spoton_live_ticks_published", "ticks published", ["session"], registry=r)
        self.superseded_frames = Counter("spoton_live_superseded_frames", "processed frames replaced by a newer "
                                         "frame of their camera before a tick described them", ["session"], registry=r)
        self.tick_send_delay = Histogram("spoton_live_tick_send_delay_seconds",
                                         "from a session publishing a tick to its hand-over to one client's "
                                         "socket (the fan-out's own delay, per client)",
                                         buckets=SEND_BUCKETS_S, registry=r)
        self.client_ticks_dropped = Counter("spoton_live_client_ticks_dropped",
                                            "ticks dropped from slow clients' queues", registry=r)
        self.commands = Counter("spoton_live_commands", "client commands by outcome", ["outcome"], registry=r)
        self.http_requests = Counter("spoton_live_http_requests", "HTTP requests by route template and status",
                                     ["method", "route", "status"], registry=r)
        self.http_latency = Histogram("spoton_live_http_request_duration_seconds",
                                      "HTTP request handling time by route template", ["method", "route"],
                                      buckets=HTTP_BUCKETS_S, registry=r)
        self.errors = Counter("spoton_live_errors", "error responses by code (see the error body's code)",
                              ["code"], registry=r)
        self.inference = Histogram("spoton_live_inference_duration_seconds",
                                   "one model call in a live session (detector: one frame)", ["model"],
                                   buckets=INFERENCE_BUCKETS_S, registry=r)
        self.history_write_failures = Counter("spoton_live_history_write_failures",
                                              "live history files the lake refused (kept to retry, bounded)",
                                              registry=r)
        self.history_rows_dropped = Gauge("spoton_live_history_rows_dropped",
                                          "live history boxes given up on after failed writes", registry=r)
        self.session_failures = Counter("spoton_live_session_failures", "sessions that ended failed", registry=r)
        self.sessions_by_state = Gauge("spoton_live_sessions", "this instance's sessions by state", ["state"],
                                       registry=r)
        self.uploads_by_state = Gauge("spoton_live_uploads", "upload jobs by state (failed: upload failures)",
                                      ["state"], registry=r)
        self.site_jobs_by_state = Gauge("spoton_live_site_jobs", "site camera upload jobs by state", ["state"],
                                        registry=r)
        self.site_job_paths = Counter("spoton_live_site_job_paths", "site camera upload jobs done, by how the "
                                      "video was cut (copy: stream copy, transcode: re-encoded)", ["path"], registry=r)
        self.ptz_commands = Counter("spoton_live_ptz_commands", "PTZ commands sent, by who drove (auto, manual)",
                                    ["driver"], registry=r)
        self.time_to_lock = Histogram("spoton_live_time_to_lock_seconds", "from choosing a target to tracking it",
                                      buckets=LATENCY_BUCKETS_S, registry=r)
        self.reacquisitions = Counter("spoton_live_reacquisitions", "targets found again after being lost",
                                      registry=r)
        self.fraction_locked = Gauge("spoton_live_fraction_locked", "time locked on the target over time with one",
                                     ["session"], registry=r)

        self.per_session = (self.fps, self.frames_processed, self.ticks, self.dropped_frames,
                            self.superseded_frames, self.fraction_locked)

    def forget_session(self, session_id: str) -> None:
        """Drop every series labelled with this session."""
        for metric in self.per_session:
            metric.remove_by_labels({"session": session_id})

    def refresh(self, sessions: dict, uploads, site_jobs=None) -> None:
        """Set the gauges read from live state, just before a scrape."""
        self.sessions_active.set(sum(session.active for session in sessions.values()))
        _set_counts(self.sessions_by_state, Tally(session.state for session in sessions.values()))
        if uploads is not None:
            _set_counts(self.uploads_by_state, Tally(record.state for record in uploads.list()))
        if site_jobs is not None:
            _set_counts(self.site_jobs_by_state, Tally(record.state for record in site_jobs.list()))


def _set_counts(gauge: Gauge, counts: Tally) -> None:
    """Replace a by-state gauge's series with these counts (states with none disappear)."""
    gauge.clear()
    for state, count in counts.items():
        gauge.labels(state).set(count)


@dataclass
class Readiness:
    """Set by the startup thread; /readyz answers 503 with ``detail`` until ``ready``."""

    ready: bool = False
    detail: str = "starting: building the sample environment and warming up the models"
    checks: dict = field(default_factory=dict)


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    """/readyz: 200 when ready; 503 (with the error body's ``detail`` and ``code``) until then."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str | list[str]] = Field(description="what startup checked (environments, detector) and whether the store and the lake are reachable")
    detail: str | None = Field(None, description="why not ready")
    code: Literal["unavailable"] | None = None
    request_id: str | None = None


router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict:
    """Alive: the process answers (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready, "description": "not ready yet"}})
def readyz(request: Request) -> JSONResponse:
    """Ready to serve sessions: the detector is warmed up, the store and the lake are reachable."""
    state = request.app.state
    readiness: Readiness = state.readiness
    storage = {name: check() for name, check in state.storage_checks.items()}
    checks = {**readiness.checks, **{name: detail for name, (_, detail) in storage.items()}}
    unreachable = [detail for ok, detail in storage.values() if not ok]
    if readiness.ready and not unreachable:
        return JSONResponse({"status": "ready", "checks": checks})
    detail = readiness.detail if not readiness.ready else "; ".join(unreachable)
    body = Ready(status="not ready", checks=checks, detail=detail, code="unavailable",
                 request_id=current_request_id())
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503)


def metrics(request: Request) -> Response:
    """/metrics (Prometheus text); ``exposure.add_metrics`` routes it per SPOTON_EXPOSE_METRICS."""
    state = request.app.state
    live: LiveMetrics = state.metrics
    live.refresh(state.sessions.sessions, getattr(state, "uploads", None), getattr(state, "site_jobs", None))
    live.ws_clients.set(state.hub.client_count)
    return Response(generate_latest(live.registry), media_type=CONTENT_TYPE_LATEST)
