"""Live sessions: one FrameProcessor (own trackers, own identity gallery) per session, in its own thread.

The processing loop takes only the latest frame of each camera (sources drop and count stale
ones), processes whatever cameras have a new frame, and publishes a tick at most at the
session's tick rate. Publishing hands a serialized tick to the fan-out and returns at once, so
inference never waits on a client.

Frame-to-tick latency runs from the moment the source made the frame available
(``LiveSource.last_frame_monotonic`` read right after taking it) to the hand-over of the tick that
describes it. A processed frame that a newer one of its camera replaces before a tick is due has
no tick of its own: it is counted as superseded (status ``superseded_frames``), not timed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import structlog

from spoton.errors import SpotOnError
from spoton.follow.ptz import PtzError, check_preset_name, check_velocity
from spoton.live.history import LiveHistoryWriter
from spoton.live.identity import AppearanceSampler, IdentityShare, LiveIdentityGallery
from spoton.models.base import Detector
from spoton.perception.config import PerceptionConfig
from spoton.perception.processor import CameraSpec, FrameProcessor
from spoton.records import CameraFrameResult
from spoton.site.model import Environment
from spoton.site.storage import environment_exists, load_environment
from spoton.live.sources import LiveSource, SourceAllowList, SourceError, SourceSpec, open_source
from spoton.storage.store import ObjectStore, StoreError, check_name
from spoton.live.tick import TickBuilder, media_timestamp

from apps.live_api.fanout import Fanout, Message, status_message
from apps.live_api.follow import SessionFollow
from apps.live_api.health import LiveMetrics

log = logging.getLogger(__name__)

# (session, camera, image, media_ts, ptz=render of the virtual PTZ's viewport or None): must not block
FrameSink = Callable[..., None]

STATES = ("starting", "running", "reconnecting", "stopped", "failed")
FINAL_STATES = ("stopped", "failed")
SHUTDOWN_TIMEOUT_S = 10.0
MODES = ("auto", "manual")


class SessionError(SpotOnError):
    """A session request cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class CommandError(ValueError):
    """A client command is malformed or unknown; the connection stays open. ``code``: the error's code."""

    def __init__(self, detail: str, code: int = 404):
        super().__init__(detail)
        self.code = code


COMMAND_TYPES = ("set_target_id", "clear_target", "set_mode", "pause", "resume", "ptz_move", "ptz_stop",
                 "ptz_goto_preset", "ptz_save_preset")


@dataclass(frozen=True)
class Command:
    type: str
    target_id: int | None = None
    mode: str | None = None
    camera: str | None = None  # ptz_*: which camera's PTZ
    velocity: tuple[float, float, float] | None = None  # ptz_move: pan, tilt, zoom in [-1, 1]
    preset: str | None = None  # ptz_goto_preset, ptz_save_preset


def _parse_ptz_command(kind: str, data: dict) -> Command:
    camera = data.get("camera")
    if not isinstance(camera, str) or not camera:
        raise CommandError(f'{kind} needs "camera": the name of a camera of the session, got {camera!r}')
    try:
        if kind == "ptz_move":
            velocity = tuple(check_velocity(axis, data.get(axis, 0.0)) for axis in ("pan", "tilt", "zoom"))
            return Command(kind, camera=camera, velocity=velocity)
        if kind == "ptz_stop":
            return Command(kind, camera=camera)
        return Command(kind, camera=camera, preset=check_preset_name(data.get("preset")))
    except PtzError as exc:
        raise CommandError(f"{kind}: {exc}") from None


def parse_command(data) -> Command:
    """Validate a client command (already JSON-decoded) or raise CommandError saying what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise CommandError(f'a command is a JSON object with a "type": one of {", ".join(COMMAND_TYPES)}')
    kind = data["type"]
    if kind == "set_target_id":
        target = data.get("target_id")
        if isinstance(target, bool) or not isinstance(target, int) or target < 1:
            raise CommandError(f'set_target_id needs "target_id": a global id (integer >= 1), got {target!r}')
        return Command(kind, target_id=target)
    if kind == "set_mode":
        if data.get("mode") not in MODES:
            raise CommandError(f'set_mode needs "mode": "auto" or "manual", got {data.get("mode")!r}')
        return Command(kind, mode=data["mode"])
    if kind in ("clear_target", "pause", "resume"):
        return Command(kind)
    if kind.startswith("ptz_") and kind in COMMAND_TYPES:
        return _parse_ptz_command(kind, data)
    raise CommandError(f"unknown command type {kind!r}: use one of {', '.join(COMMAND_TYPES)}")


class _Window:
    """The last N samples, for rates and percentiles."""

    def __init__(self, size: int = 300):
        self.values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self.values.append(value)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.values, q)) if self.values else None

    def rate(self, horizon_s: float = 5.0) -> float:
        """Events per second over the last ``horizon_s`` when the values are event times."""
        if len(self.values) < 2:
            return 0.0
        now = self.values[-1]
        recent = [t for t in self.values if now - t <= horizon_s]
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0


class LiveSession:
    """Sources -> FrameProcessor -> identity gallery -> ticks, in one thread; see the module docstring."""

    def __init__(self, session_id: str, environment: Environment, sources: Mapping[str, LiveSource],
                 processor: FrameProcessor, *, tick_rate_hz: float, fanout: Fanout, metrics: LiveMetrics,
                 instance_id: str, status_interval_s: float = 1.0, frame_sink: FrameSink | None = None,
                 history: LiveHistoryWriter | None = None, appearance: AppearanceSampler | None = None,
                 identity_share: IdentityShare | None = None):
        self.id = session_id
        self.environment = environment
        self.sources = dict(sources)
        self.processor = processor
        self.tick_rate_hz = float(tick_rate_hz)
        self.fanout = fanout
        self.metrics = metrics
        self.instance_id = instance_id
        self.status_interval_s = status_interval_s
        self.frame_sink = frame_sink  # the media plane: each processed frame, with its media timestamp
        self.history = history  # the lake: each processed instant's tracks (spoton.live.history)
        self._media_epoch = time.monotonic()
        self._media_ts: dict[str, int] = {}
        self.gallery = LiveIdentityGallery(share=identity_share)
        self.appearance = appearance  # embeds track crops for the gallery (None: floor position only)
        self.ticks = TickBuilder(session_id)
        self.state = "starting"
        self.reason: str | None = None
        self.paused = False
        self.mode = "auto"
        self.selected_target_id: int | None = None
        self.follow = SessionFollow(session_id, metrics)
        self.created_unix_ms = int(time.time() * 1000)
        self.ticks_published = 0
        self._latency = _Window()
        self._processed_at = _Window()
        self._latest: dict[str, CameraFrameResult] = {}
        self._latest_ids: dict[str, np.ndarray] = {}
        self._pending: dict[str, float] = {}  # camera -> arrival time of its newest processed, unpublished frame
        self.superseded_frames = 0  # processed frames replaced by a newer one of their camera before any tick
        self._last_frame_unix_ms: dict[str, int] = {}
        self._dropped_reported: dict[str, int] = {name: 0 for name in self.sources}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"session-{session_id}", daemon=True)

    # --- control -------------------------------------------------------------------------
    def start(self) -> "LiveSession":
        self._thread.start()
        return self

    @property
    def active(self) -> bool:
        """Holds a slot of the instance's cap: neither stopped nor failed."""
        return self.state not in FINAL_STATES

    def request_stop(self) -> None:
        """Tell the processing loop to end, without waiting (see :meth:`stop`)."""
        self._stop.set()

    def stop(self, reason: str | None = None, timeout_s: float = 15.0) -> str:
        """End the loop and the sources, waiting about ``timeout_s`` at most; returns the final state."""
        deadline = time.monotonic() + timeout_s
        self.request_stop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        for source in self.sources.values():
            source.stop(timeout_s=max(0.0, deadline - time.monotonic()))
        if self.state != "failed":
            self._set_state("stopped", reason)
        self.metrics.forget_session(self.id)
        return self.state

    def apply(self, command: Command) -> None:
        """Apply a command; CommandError for a target id this session never handed out."""
        if command.type == "set_target_id" and not self.gallery.issued(command.target_id):
            raise CommandError(f"no global id {command.target_id} in session {self.id}: it has handed out "
                               f"ids 1..{self.gallery.last_issued} so far (see the ticks' global_id)")
        with self._lock:
            if command.type == "set_target_id":
                self.selected_target_id = command.target_id
                self.follow.phase.select(command.target_id, time.monotonic())
            elif command.type == "clear_target":
                self.selected_target_id = None
                self.follow.phase.clear(time.monotonic())
            elif command.type.startswith("ptz_"):
                self._apply_ptz(command)
            elif command.type == "set_mode":
                self.mode = command.mode
                self.follow.set_mode()
            elif command.type == "pause":
                self.paused = True
            elif command.type == "resume":
                self.paused = False
        self.publish_status()

    def _apply_ptz(self, command: Command) -> None:
        if command.camera not in self.sources:
            raise CommandError(f"{command.type}: no camera {command.camera!r} in session {self.id}; "
                               f"its cameras are {sorted(self.sources)}")
        try:
            self.follow.apply_ptz(command.type, command.camera, auto=self.mode == "auto", velocity=command.velocity,
                                  preset=command.preset)
        except PtzError as exc:
            raise CommandError(f"{command.type}: {exc}", code=getattr(exc, "code", 404)) from None

    # --- status --------------------------------------------------------------------------
    def status(self) -> dict:
        cameras = {}
        for name, source in self.sources.items():
            result = self._latest.get(name)
            cameras[name] = {
                "state": source.state, "error": source.error,
                "source": {"kind": source.spec.kind, "uri": source.spec.shown_uri},
                "frames_read": source.frames_read, "dropped_frames": source.dropped,
                "source_fps": round(source.fps, 2),
                "frame_index": None if result is None else result.frame_index,
                "last_frame_unix_ms": self._last_frame_unix_ms.get(name),
            }
        p50, p95 = self._latency.percentile(50), self._latency.percentile(95)
        return {
            "type": "status", "session_id": self.id, "environment": self.environment.name,
            "state": self.state, "reason": self.reason, "paused": self.paused, "mode": self.mode,
            "selected_target_id": self.selected_target_id, "tracking_phase": self.follow.phase.phase,
            "follow": self.follow.status(), "tick_rate_hz": self.tick_rate_hz,
            "fps": round(self._processed_at.rate(), 2),
            "latency_ms": {"p50": None if p50 is None else round(p50 * 1000, 1),
                           "p95": None if p95 is None else round(p95 * 1000, 1)},
            "dropped_frames": sum(s.dropped for s in self.sources.values()),
            "superseded_frames": self.superseded_frames,
            "ticks_published": self.ticks_published, "global_ids": len(self.gallery),
            "reacquired_by_appearance": self.gallery.reacquired,
            "cameras": cameras, "created_unix_ms": self.created_unix_ms, "instance": self.instance_id,
            "ws_path": f"/ws/sessions/{self.id}",
        }

    def publish_status(self) -> None:
        status = self.status()
        self.fanout.publish(status_message(status), status)

    def _set_state(self, state: str, reason: str | None = None) -> None:
        if state == self.state and reason == self.reason:
            return
        self.state, self.reason = state, reason
        log.info("session %s: %s%s", self.id, state, f" ({reason})" if reason else "")
        self.publish_status()

    def _state_from_sources(self) -> None:
        failed = {n: s.error for n, s in self.sources.items() if s.state == "failed"}
        if failed:
            raise SessionError(502, "; ".join(f"camera {n}: {e}" for n, e in failed.items()))
        states = {s.state for s in self.sources.values()}
        if "reconnecting" in states:
            waiting = [n for n, s in self.sources.items() if s.state == "reconnecting"]
            self._set_state("reconnecting", f"reconnecting to {', '.join(waiting)}")
        elif self._latest and states <= {"running", "stopped"}:
            self._set_state("running")

    # --- the processing loop -------------------------------------------------------------
    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(session_id=self.id)  # on every line of this thread
        try:
            for source in self.sources.values():
                source.start()
            self.publish_status()
            next_status = time.monotonic() + self.status_interval_s
            last_tick = -float("inf")
            while not self._stop.is_set():
                self._state_from_sources()
                if self.paused:  # sources keep running and drop stale frames meanwhile
                    self._stop.wait(0.02)
                    self._account_drops()
                    continue
                frames, arrivals = {}, {}
                for name, source in self.sources.items():
                    frame = source.latest()
                    if frame is not None:
                        frames[name], arrivals[name] = frame, source.last_frame_monotonic or time.monotonic()
                if frames:
                    self._process(frames, arrivals)
                now = time.monotonic()
                if self._pending and now - last_tick >= 1.0 / self.tick_rate_hz:
                    self._publish_tick()
                    last_tick = now
                elif not frames:
                    self._stop.wait(0.004)
                if now >= next_status:
                    self._account_drops()
                    self.publish_status()
                    next_status = now + self.status_interval_s
        except Exception as exc:
            log.exception("session %s failed", self.id)
            self.metrics.session_failures.inc()
            self._set_state("failed", exc.detail if isinstance(exc, SessionError) else f"{type(exc).__name__}: {exc}")
        finally:
            self.processor.close()  # its camera pool
            for source in self.sources.values():
                source.stop(timeout_s=2)
            if self.history is not None:  # stopped or failed: what it saw goes to the lake now
                self.history.end_session(self.id)

    def _process(self, frames: dict, arrivals: dict[str, float]) -> None:
        results = self.processor.process(frames)
        now = time.monotonic()
        embeddings = None
        if self.appearance is not None:
            embeddings = self.appearance.sample(results, {name: frames[name].image for name in results})
        global_ids = self.gallery.update(results, now, embeddings)
        unix_ms = int(time.time() * 1000)
        for name in results:
            self._latest[name] = results[name]
            self._latest_ids[name] = global_ids[name]
            if name in self._pending:
                self.superseded_frames += 1
                self.metrics.superseded_frames.labels(self.id).inc()
            self._pending[name] = arrivals[name]
            self._last_frame_unix_ms[name] = unix_ms
            self._media_ts[name] = media_timestamp(arrivals[name] - self._media_epoch)
        if self.history is not None:  # capture times on the wall clock, from the frames' arrivals
            wall = time.time() - (time.monotonic() - now)
            self.history.append(self.id, self.environment.name, results, global_ids,
                                {name: wall - (now - arrivals[name]) for name in results})
        self._processed_at.add(now)
        self.metrics.frames_processed.labels(self.id).inc(len(results))
        with self._lock:
            self._follow(results, now)
            renderers = {name: self.follow.renderer(name, frames[name].image) for name in results}
        if self.frame_sink is not None:  # after framing: the PTZ picture uses this frame's viewport
            for name in results:
                self.frame_sink(self.id, name, frames[name].image, self._media_ts[name], ptz=renderers[name])

    def _follow(self, results: dict[str, CameraFrameResult], now: float) -> None:
        """The target's phase and the virtual PTZs after a processed instant (under the lock)."""
        if self.mode == "auto" and self.selected_target_id is None:
            self._auto_target()
        self.follow.update(results, self._latest_ids, self.selected_target_id, self.mode == "auto", now)
        if self.follow.phase.target_id is None:  # none chosen, or the phase machine gave up on it
            self.selected_target_id = None

    def _auto_target(self) -> None:
        """Auto mode, without a target: follow the identity seen by the most cameras (the phase machine
        keeps a target through occlusions until it gives up on it, see :mod:`spoton.follow.phase`)."""
        visible: dict[int, int] = {}
        for ids in self._latest_ids.values():
            for gid in ids:
                visible[int(gid)] = visible.get(int(gid), 0) + 1
        if visible:
            self.selected_target_id = max(visible, key=lambda gid: (visible[gid], -gid))
            self.follow.phase.select(self.selected_target_id, time.monotonic())

    def _publish_tick(self) -> None:
        with self._lock:
            tick = self.ticks.build(self._latest, self._latest_ids, selected_target_id=self.selected_target_id,
                                    mode=self.mode, media_ts=self._media_ts, ts_unix_ms=int(time.time() * 1000),
                                    ts_mono_ms=int(time.monotonic() * 1000), tracking_phase=self.follow.phase.phase,
                                    ptz=self.follow.tick_entries(self._latest, self._latest_ids, self.mode))
        self.fanout.publish(Message(self.id, "tick", json.dumps(tick, separators=(",", ":"))))
        done = time.monotonic()
        for arrival in self._pending.values():
            self._latency.add(done - arrival)
            self.metrics.latency.observe(done - arrival)
        self._pending.clear()
        self.ticks_published += 1
        self.metrics.ticks.labels(self.id).inc()
        self.metrics.fps.labels(self.id).set(self._processed_at.rate())

    def _account_drops(self) -> None:
        for name, source in self.sources.items():
            delta = source.dropped - self._dropped_reported[name]
            if delta > 0:
                self.metrics.dropped_frames.labels(self.id, name).inc(delta)
                self._dropped_reported[name] = source.dropped


class SessionManager:
    """Creates, finds and stops this instance's sessions; the detector is shared, state is not.

    Only active sessions count against ``max_sessions``. A failed one stays listed, with its
    reason, until it is deleted; to bound memory, each create first unlists the oldest failed
    sessions beyond the ``max_sessions`` newest.
    """

    def __init__(self, store: ObjectStore, detector_factory: Callable[[], Detector], fanout: Fanout,
                 metrics: LiveMetrics, *, instance_id: str, max_sessions: int, max_tick_rate_hz: float,
                 status_interval_s: float = 1.0, realtime_sources: bool = True,
                 resolve_upload: Callable[[str], str] | None = None, allow: SourceAllowList | None = None,
                 perception: PerceptionConfig = PerceptionConfig(), frame_sink: FrameSink | None = None,
                 history: LiveHistoryWriter | None = None,
                 appearance: Callable[[], AppearanceSampler | None] | None = None,
                 identity_share: Callable[[str], IdentityShare] | None = None):
        self.store = store
        self.detector_factory = detector_factory
        self.perception = perception
        self.fanout = fanout
        self.metrics = metrics
        self.instance_id = instance_id
        self.max_sessions = max_sessions
        self.max_tick_rate_hz = max_tick_rate_hz
        self.status_interval_s = status_interval_s
        self.realtime_sources = realtime_sources
        self.resolve_upload = resolve_upload
        self.allow = allow  # what sources may open (None: anything)
        self.frame_sink = frame_sink
        self.history = history
        self.appearance = appearance  # a sampler per session (on the shared embedder), or None
        self.identity_share = identity_share  # per environment (Redis), or None: ids per session
        self.sessions: dict[str, LiveSession] = {}
        self._lock = threading.Lock()

    def environment(self, name: str) -> Environment:
        """The environment's config; errors name it, never the store's paths."""
        unknown = SessionError(404, f"unknown environment {name!r}: list them with GET /api/v1/environments")
        try:
            if not environment_exists(self.store, check_name(name, 'environment')):
                raise unknown
        except StoreError:
            raise unknown from None
        try:
            return load_environment(self.store, name)
        except SpotOnError as exc:
            log.error("environment %s cannot be loaded: %s", name, exc)
            raise SessionError(422, f"environment {name!r} cannot be loaded on this server (its files "
                                    "are incomplete or invalid; the server log says why)") from None

    def default_source(self, environment: str, camera: str) -> SourceSpec:
        """The camera's first sub-video, else the stream or file it was added with."""
        keys = sorted(self.store.list_keys(f"{environment}/{camera}/"))
        videos = [k for k in keys if k.endswith(".mp4")]
        added = self.environment(environment).camera(camera).source
        if not videos and added is not None and added.kind in ("rtsp", "http", "file"):
            return SourceSpec(added.kind, added.uri)
        if not videos:
            raise SessionError(422, f"camera {camera!r} of {environment!r} has no sub-videos in the store: "
                                    "give its source explicitly (file, store key, upload, rtsp or http)")
        return SourceSpec("store", videos[0])

    def create(self, environment: str, sources: Mapping[str, SourceSpec] | None,
               tick_rate_hz: float) -> LiveSession:
        if not 0 < tick_rate_hz <= self.max_tick_rate_hz:
            raise SessionError(422, f"tick_rate_hz must be within (0, {self.max_tick_rate_hz}], got {tick_rate_hz}")
        env = self.environment(environment)
        known = tuple(c.name for c in env.cameras if c.enabled)
        if not known:
            raise SessionError(422, f"environment {environment!r} has no enabled camera: add or enable one "
                                    f"(POST /api/v1/sites/{environment}/cameras)")
        unknown = set(sources or {}) - set(known)
        if unknown:
            raise SessionError(422, f"unknown cameras {sorted(unknown)} for {environment!r}; known: {list(known)}")
        specs = {cam: (sources or {}).get(cam) or self.default_source(environment, cam)
                 for cam in (sources.keys() if sources else known)}
        with self._lock:
            self._forget_old_failures()
            if self.active_count >= self.max_sessions:
                raise SessionError(429, f"this instance runs its maximum of {self.max_sessions} sessions: "
                                        "delete one (DELETE /api/v1/sessions/{id}) or raise SPOTON_MAX_SESSIONS")
            opened: dict[str, LiveSource] = {}
            try:
                for cam, spec in specs.items():
                    if spec.kind == "upload":
                        if self.resolve_upload is None:
                            raise SessionError(422, "uploads are not available on this instance")
                        spec = SourceSpec("upload", self.resolve_upload(spec.uri))
                    opened[cam] = open_source(spec, store=self.store, realtime=self.realtime_sources,
                                              allow=self.allow)
            except SourceError as exc:  # an UploadError carries its own status (404 unknown id)
                raise SessionError(getattr(exc, "status", 422), f"camera {cam}: {exc}") from None
            cameras = [self._camera_spec(env, cam) for cam in specs]
            processor = self.perception.build_processor(cameras, env.fps, detector=self.detector_factory())
            session_id = f"s-{uuid.uuid4().hex[:12]}"
            session = LiveSession(session_id, env, opened, processor, tick_rate_hz=tick_rate_hz,
                                  fanout=self.fanout, metrics=self.metrics, instance_id=self.instance_id,
                                  status_interval_s=self.status_interval_s, frame_sink=self.frame_sink,
                                  history=self.history,
                                  appearance=self.appearance() if self.appearance else None,
                                  identity_share=self.identity_share(environment) if self.identity_share else None)
            self.sessions[session_id] = session
        return session.start()

    @property
    def active_count(self) -> int:
        return sum(session.active for session in list(self.sessions.values()))

    def _forget_old_failures(self) -> None:
        """Unlist the oldest failed sessions beyond ``max_sessions`` (under the lock; their threads
        have ended or are ending, their sources stopped)."""
        failed = [s for s in self.sessions.values() if s.state == "failed"]
        for session in failed[:max(0, len(failed) - self.max_sessions)]:
            log.info("session %s: failed and not deleted, unlisted to keep the newest %d failed ones",
                     session.id, self.max_sessions)
            del self.sessions[session.id]
            self.metrics.forget_session(session.id)

    @staticmethod
    def _camera_spec(env: Environment, camera: str) -> CameraSpec:
        """The camera's calibration and tracked region; a camera without calibration gets no map positions."""
        if env.camera(camera).calibration is None:
            log.warning("camera %s of %s has no calibration: no map positions", camera, env.name)
        return env.camera_spec(camera)

    def get(self, session_id: str) -> LiveSession | None:
        return self.sessions.get(session_id)

    def delete(self, session_id: str) -> str | None:
        """Stop and unlist a session; its final state ("stopped" or "failed"), None if unknown."""
        with self._lock:
            session = self.sessions.pop(session_id, None)
        return None if session is None else session.stop("deleted")

    async def find_status(self, session_id: str) -> dict | None:
        """The session's status, from this instance or (through Redis) the one running it; None if none does."""
        session = self.sessions.get(session_id)
        return session.status() if session is not None else await self.fanout.remote_status(session_id)

    async def remote_command(self, session_id: str, data: dict) -> None:
        """A command sent to another instance for a session this instance owns (``Fanout.on_remote_command``)."""
        if session_id not in self.sessions:
            return
        if data.get("type") == "__delete__":
            await asyncio.get_running_loop().run_in_executor(None, self.delete, session_id)
            return
        try:
            self.sessions[session_id].apply(parse_command(data))
        except CommandError:
            log.warning("ignored a bad forwarded command for %s: %r", session_id, data)

    def stop_all(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Stop every session, all told at once, so the whole wait is about ``timeout_s`` at most."""
        with self._lock:
            sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            session.request_stop()
        deadline = time.monotonic() + timeout_s
        for session in sessions:
            session.stop("the server is shutting down", timeout_s=max(0.0, deadline - time.monotonic()))
