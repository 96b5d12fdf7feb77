"""A live session's following: the target's phase and one virtual PTZ per camera.

Each camera gets a virtual PTZ (a crop-and-zoom viewport, :mod:`spoton.follow.ptz`) with its
first frame. In auto mode each viewport frames the target where its camera sees it (and zooms out
where it does not); in manual mode only the operator's ``ptz_*`` commands move them. Each
processed frame is *framed* once: the viewport's status then is what both the tick's ``ptz`` entry
and the rendered PTZ video frame of that instant use, so boxes and picture agree. The owner
(:class:`apps.live_api.sessions.LiveSession`) calls everything under its lock.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from spoton.follow.controller import FramingController
from spoton.follow.phase import PhaseMachine
from spoton.follow.ptz import PtzError, PtzGeometry, PtzStatus, VirtualPtz, ptz_tick_entry, viewport_view
from spoton.records import CameraFrameResult

from apps.live_api.health import LiveMetrics


class SessionFollow:
    """Phase, virtual PTZs and their controllers of one session; see the module docstring."""

    def __init__(self, session_id: str, metrics: LiveMetrics):
        self.session_id = session_id
        self.metrics = metrics
        self.phase = PhaseMachine()
        self.ptz: dict[str, VirtualPtz] = {}
        self._framing: dict[str, FramingController] = {}
        self.framed: dict[str, PtzStatus] = {}  # each camera's viewport at its latest processed frame
        self._last: float | None = None

    def set_mode(self) -> None:
        """Each mode starts from still PTZs."""
        for camera, ptz in self.ptz.items():
            ptz.stop()
            self._framing[camera].reset()

    def apply_ptz(self, kind: str, camera: str, *, auto: bool, velocity=None, preset: str | None = None) -> None:
        """A manual PTZ command; PtzError (with ``code``) saying why it cannot be served."""
        ptz = self.ptz.get(camera)
        if ptz is None:
            raise _refused(f"camera {camera!r} has no PTZ yet (it gets its virtual PTZ with its first "
                           "frame): try again in a moment")
        if auto and kind in ("ptz_move", "ptz_goto_preset"):
            raise _refused("the session is in auto mode, where the PTZ follows the target: "
                           'send {"type": "set_mode", "mode": "manual"} first')
        if kind == "ptz_move":
            ptz.continuous_move(*velocity)
        elif kind == "ptz_stop":
            ptz.stop()
        elif kind == "ptz_goto_preset":
            ptz.goto_preset(preset)
        else:
            ptz.save_preset(preset)
        self.metrics.ptz_commands.labels("manual").inc()

    def update(self, results: Mapping[str, CameraFrameResult], latest_ids: Mapping[str, np.ndarray],
               target: int | None, auto: bool, now: float) -> None:
        """After a processed instant: the phase, then (auto mode) each camera's viewport."""
        machine = self.phase
        before = (machine.phase, machine.reacquisitions)
        machine.update(target is not None and any(target in ids for ids in latest_ids.values()), now)
        if before[0] == "ACQUIRING" and machine.phase == "TRACKING":
            self.metrics.time_to_lock.observe(machine.time_to_lock_s)
        if machine.reacquisitions > before[1]:
            self.metrics.reacquisitions.inc()
        if machine.fraction_locked is not None:
            self.metrics.fraction_locked.labels(self.session_id).set(machine.fraction_locked)
        dt = 0.0 if self._last is None else now - self._last
        self._last = now
        for name, result in results.items():
            if name not in self.ptz:
                geometry = PtzGeometry(result.frame_size)
                self.ptz[name], self._framing[name] = VirtualPtz(geometry), FramingController(geometry)
            if auto:
                self._frame_target(name, result, latest_ids[name], target, dt)
            self.framed[name] = self.ptz[name].status()

    def _frame_target(self, name: str, result: CameraFrameResult, ids: np.ndarray, target: int | None,
                      dt: float) -> None:
        """Auto mode: steer the camera's viewport toward the target's box (zoom out without it)."""
        ptz, rows = self.ptz[name], np.flatnonzero(ids == target)
        position = ptz.status().position
        box = ptz.geometry.to_viewport(result.tracks.xyxy[rows[:1]], position)[0] if len(rows) else None
        velocity = self._framing[name].command(box, position, dt)
        if velocity != ptz.velocity:  # a continuous move holds until the next command
            ptz.continuous_move(*velocity)
            self.metrics.ptz_commands.labels("auto").inc()

    def tick_entries(self, latest: Mapping[str, CameraFrameResult], latest_ids: Mapping[str, np.ndarray],
                     mode: str) -> dict[str, dict]:
        """Each camera's ``ptz`` entry of the tick, with its viewport's boxes (``space: "processed"``)."""
        entries = {}
        for name, ptz in self.ptz.items():
            result, status = latest[name], self.framed[name]
            view = viewport_view(ptz.geometry, status.position, result.tracks.xyxy, result.tracks.track_id,
                                 latest_ids[name])
            entries[name] = ptz_tick_entry("virtual", status, mode, view)
        return entries

    def renderer(self, camera: str, image: np.ndarray) -> Callable[[], np.ndarray] | None:
        """The PTZ picture of this processed frame (as framed), rendered when called; None without a PTZ."""
        ptz, status = self.ptz.get(camera), self.framed.get(camera)
        if ptz is None or status is None:
            return None
        geometry, position = ptz.geometry, status.position
        return lambda: geometry.render(image, position)

    def status(self) -> dict:
        machine = self.phase
        return {"time_to_lock_s": None if machine.time_to_lock_s is None else round(machine.time_to_lock_s, 3),
                "fraction_locked": None if machine.fraction_locked is None else round(machine.fraction_locked, 4),
                "reacquisitions": machine.reacquisitions}


def _refused(detail: str) -> PtzError:
    error = PtzError(detail)
    error.code = 409
    return error
