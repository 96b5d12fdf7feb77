"""The framing controller: target box in the viewport -> pan/tilt/zoom velocity commands.

Each axis is a proportional controller in the PTZ's own position units with a dead zone, a
maximum speed, a maximum acceleration and a braking limit: the speed never exceeds
``sqrt(2 * max_accel * |error|)``, the speed from which the axis can still stop within the
remaining error at ``max_accel``. That limit is what keeps a step response from overshooting
(no oscillation around the target), while the dead zone keeps a still target from being
chased pixel by pixel. Inside the dead zone the axis brakes to a stop.

Pan and tilt errors are the target centre's offset from the viewport centre converted to
pan/tilt units (a viewport fraction is ``2 / zoom_factor`` units: the same pixel error needs less
motion when zoomed in). Zoom aims at the target's box filling ``target_height`` of the viewport,
or more where the target is near the picture's edge: only a narrower viewport can centre it there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spoton.follow.ptz import PtzGeometry, PtzPosition, VirtualPtzConfig


@dataclass(frozen=True)
class AxisLimits:
    gain: float  # 1/s: commanded speed per unit of error
    dead_zone: float  # error (axis units) under which the axis stops
    max_speed: float  # axis units per second
    max_accel: float  # axis units per second squared

    def __post_init__(self) -> None:
        for name in ("gain", "max_speed", "max_accel"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.dead_zone < 0:
            raise ValueError(f"dead_zone must be >= 0, got {self.dead_zone}")


class AxisController:
    """One axis; ``step(error, dt)`` -> the speed to command now (axis units per second)."""

    def __init__(self, limits: AxisLimits):
        self.limits = limits
        self.speed = 0.0
        self.engaged = False

    def reset(self) -> None:
        self.speed, self.engaged = 0.0, False

    def step(self, error: float, dt: float) -> float:
        lim = self.limits
        # hysteresis: start beyond the dead zone, keep going until within half of it
        self.engaged = abs(error) > (lim.dead_zone / 2 if self.engaged else lim.dead_zone)
        wanted = 0.0
        if self.engaged:
            braking = math.sqrt(2 * lim.max_accel * abs(error))
            wanted = math.copysign(min(lim.gain * abs(error), braking, lim.max_speed), error)
        change = float(np.clip(wanted - self.speed, -lim.max_accel * dt, lim.max_accel * dt))
        # braking may always be as hard as needed to avoid passing the target
        if abs(wanted) < abs(self.speed) and np.sign(wanted) in (0, np.sign(self.speed)):
            change = wanted - self.speed
        self.speed += change
        return self.speed


@dataclass(frozen=True)
class FramingConfig:
    pan: AxisLimits = AxisLimits(gain=2.5, dead_zone=0.03, max_speed=0.6, max_accel=1.5)
    zoom: AxisLimits = AxisLimits(gain=1.2, dead_zone=0.08, max_speed=0.5, max_accel=1.0)
    target_height: float = 0.25  # the target's box height as a fraction of the viewport (more zoom blurs a
    # wide picture: the detector's scores drop past about 2x on the sample video)
    lost_zoom_out: float = -0.3  # zoom velocity while the target is out of view (widen the search)


class FramingController:
    """Pan/tilt/zoom velocities (in [-1, 1], the PTZ's command units) that frame one target."""

    def __init__(self, geometry: PtzGeometry, ptz: VirtualPtzConfig = VirtualPtzConfig(),
                 config: FramingConfig = FramingConfig()):
        self.geometry = geometry
        self.ptz = ptz
        self.config = config
        self.pan, self.tilt = AxisController(config.pan), AxisController(config.pan)
        self.zoom = AxisController(config.zoom)

    def reset(self) -> None:
        for axis in (self.pan, self.tilt, self.zoom):
            axis.reset()

    def errors(self, box: np.ndarray, position: PtzPosition) -> tuple[float, float, float]:
        """(pan, tilt, zoom) errors in position units for a target box in viewport [0, 1] (x1, y1, x2, y2)."""
        factor = self.geometry.zoom_factor(position.zoom)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        height = max(float(box[3] - box[1]), 1e-3)
        zoom_error = math.log(self.config.target_height / height) / math.log(self.geometry.max_zoom) \
            if self.geometry.max_zoom > 1 else 0.0
        pan_error, tilt_error = (cx - 0.5) * 2 / factor, (0.5 - cy) * 2 / factor  # tilt up is positive
        # the zoom axis stops within its dead zone: aim past the least zoom by that much
        needed = self._zoom_to_centre(position.pan + pan_error, position.tilt + tilt_error)
        if needed > 0:
            zoom_error = max(zoom_error, min(needed + self.config.zoom.dead_zone, 1.0) - position.zoom)
        return pan_error, tilt_error, zoom_error

    def _zoom_to_centre(self, pan: float, tilt: float) -> float:
        """The least zoom at which a point (in pan/tilt units) can be centred: near the picture's edge
        the viewport can only reach it once it is narrow enough (the virtual PTZ and the simulator)."""
        edge = min(max(abs(pan), abs(tilt)), 0.95)
        return float(np.clip(math.log(1 / (1 - edge)) / math.log(self.geometry.max_zoom), 0.0, 1.0)) \
            if self.geometry.max_zoom > 1 else 0.0

    def command(self, box: np.ndarray | None, position: PtzPosition, dt: float) -> tuple[float, float, float]:
        """Velocities for the target's viewport box, or (None) a stop and a slow zoom out while it is unseen."""
        if box is None:
            self.pan.reset()
            self.tilt.reset()
            self.zoom.reset()
            return 0.0, 0.0, self.config.lost_zoom_out if position.zoom > 0 else 0.0
        pan_error, tilt_error, zoom_error = self.errors(np.asarray(box, np.float64), position)
        pan = self.pan.step(pan_error, dt) / self.ptz.pan_speed
        tilt = self.tilt.step(tilt_error, dt) / self.ptz.pan_speed
        zoom = self.zoom.step(zoom_error, dt) / self.ptz.zoom_speed
        return tuple(float(np.clip(v, -1.0, 1.0)) for v in (pan, tilt, zoom))
