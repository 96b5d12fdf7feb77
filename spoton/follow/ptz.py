"""PTZ cameras behind one protocol, and the virtual PTZ: a crop-and-zoom viewport over a fixed camera.

Units are ONVIF's generic spaces: pan and tilt in [-1, 1], zoom in [0, 1]; continuous-move
velocities in [-1, 1] per axis. :class:`PtzGeometry` says what a position frames in a wide
picture (the fixed camera's frame for the virtual PTZ, the world video for the simulator): the
zoom factor is ``max_zoom ** zoom``, the viewport keeps the picture's aspect ratio and its centre
sits at ``pan``/``tilt`` in the picture's normalised coordinates (pan ``-1`` left edge, ``1`` right
edge; tilt ``1`` top edge, ``-1`` bottom edge: ONVIF's up is positive), clamped so the viewport
never leaves the picture. The state is clamped the
same way, so the reported position is always the framed one.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import cv2
import numpy as np

_PRESET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class PtzError(ValueError):
    """A PTZ request cannot be served (bad velocity, unknown preset, camera unreachable)."""


def check_preset_name(name) -> str:
    if not isinstance(name, str) or not _PRESET_NAME.match(name):
        raise PtzError(f"a preset name is 1-32 letters, digits, '_', '-' or '.', got {name!r}")
    return name


def check_velocity(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
        raise PtzError(f"{name} velocity must be a number in [-1, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PtzPosition:
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0


@dataclass(frozen=True)
class PtzStatus:
    """What a PTZ reports: its position and whether it is moving."""

    position: PtzPosition
    moving: bool

    def as_dict(self) -> dict:
        return {"pan": round(self.position.pan, 4), "tilt": round(self.position.tilt, 4),
                "zoom": round(self.position.zoom, 4), "moving": self.moving}


class PtzController(Protocol):
    """The commands SpotOn sends a PTZ camera (real over ONVIF, or virtual)."""

    def continuous_move(self, pan: float, tilt: float, zoom: float) -> None: ...

    def stop(self) -> None: ...

    def goto_preset(self, name: str) -> None: ...

    def save_preset(self, name: str) -> None: ...

    def status(self) -> PtzStatus: ...


@dataclass(frozen=True)
class PtzGeometry:
    """What a PTZ position frames in a wide picture of ``size`` (width, height) pixels."""

    size: tuple[int, int]
    max_zoom: float = 4.0

    def __post_init__(self) -> None:
        if min(self.size) < 1:
            raise ValueError(f"picture size must be positive, got {self.size}")
        if self.max_zoom < 1:
            raise ValueError(f"max_zoom must be >= 1, got {self.max_zoom}")

    def zoom_factor(self, zoom: float) -> float:
        return float(self.max_zoom ** float(np.clip(zoom, 0.0, 1.0)))

    def clamp(self, position: PtzPosition) -> PtzPosition:
        """The same position with pan/tilt limited so the viewport stays inside the picture."""
        zoom = float(np.clip(position.zoom, 0.0, 1.0))
        reach = 1.0 - 1.0 / self.zoom_factor(zoom)
        return PtzPosition(float(np.clip(position.pan, -reach, reach)),
                           float(np.clip(position.tilt, -reach, reach)), zoom)

    def viewport(self, position: PtzPosition) -> np.ndarray:
        """(x1, y1, x2, y2) of the framed part, in picture pixels."""
        position = self.clamp(position)
        width, height = self.size
        factor = self.zoom_factor(position.zoom)
        w, h = width / factor, height / factor
        cx, cy = (1 + position.pan) * width / 2, (1 - position.tilt) * height / 2
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def to_viewport(self, xyxy: np.ndarray, position: PtzPosition) -> np.ndarray:
        """Picture-pixel boxes (N, 4) -> normalised [0, 1] viewport coordinates (may leave [0, 1])."""
        x1, y1, x2, y2 = self.viewport(position)
        scale = np.array([x2 - x1, y2 - y1, x2 - x1, y2 - y1])
        return (np.asarray(xyxy, np.float64).reshape(-1, 4) - np.array([x1, y1, x1, y1])) / scale

    def to_picture(self, xyxy: np.ndarray, position: PtzPosition, out_size: tuple[int, int]) -> np.ndarray:
        """Boxes (N, 4) in pixels of a rendered viewport of ``out_size`` -> picture pixels."""
        x1, y1, x2, y2 = self.viewport(position)
        scale = np.array([(x2 - x1) / out_size[0], (y2 - y1) / out_size[1]] * 2)
        return np.asarray(xyxy, np.float64).reshape(-1, 4) * scale + np.array([x1, y1, x1, y1])

    def render(self, picture: np.ndarray, position: PtzPosition, out_size: tuple[int, int] | None = None) -> np.ndarray:
        """The framed part of ``picture``, resized to ``out_size`` (default: the picture's size)."""
        x1, y1, x2, y2 = self.viewport(position)
        out_w, out_h = out_size or self.size
        # affine map of the viewport onto the output: sub-pixel accurate, no rounding jitter
        matrix = np.array([[out_w / (x2 - x1), 0, -x1 * out_w / (x2 - x1)],
                           [0, out_h / (y2 - y1), -y1 * out_h / (y2 - y1)]])
        return cv2.warpAffine(picture, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class VirtualPtzConfig:
    pan_speed: float = 0.6  # pan/tilt units per second at velocity 1 (the full range is 2)
    zoom_speed: float = 0.5  # zoom units per second at velocity 1 (the full range is 1)

    def __post_init__(self) -> None:
        if not (self.pan_speed > 0 and self.zoom_speed > 0):
            raise ValueError(f"speeds must be > 0, got pan {self.pan_speed}, zoom {self.zoom_speed}")


class VirtualPtz:
    """A PTZ whose motion is integrated on ``clock``; the virtual PTZ and the simulator's state.

    Thread-safe: the commands may come from a request thread while a renderer reads ``position``.
    """

    def __init__(self, geometry: PtzGeometry, config: VirtualPtzConfig = VirtualPtzConfig(),
                 clock: Callable[[], float] = time.monotonic):
        self.geometry, self.config, self.clock = geometry, config, clock
        self._position = PtzPosition()
        self._velocity = (0.0, 0.0, 0.0)
        self._updated: float | None = None
        self._presets: dict[str, PtzPosition] = {}
        self._lock = threading.Lock()

    def _advance(self) -> None:
        now = self.clock()
        if self._updated is not None and now > self._updated:
            dt = now - self._updated
            vp, vt, vz = self._velocity
            speed, zoom_speed = self.config.pan_speed, self.config.zoom_speed
            moved = PtzPosition(self._position.pan + vp * speed * dt, self._position.tilt + vt * speed * dt,
                                self._position.zoom + vz * zoom_speed * dt)
            self._position = self.geometry.clamp(moved)
        self._updated = now

    @property
    def position(self) -> PtzPosition:
        with self._lock:
            self._advance()
            return self._position

    @property
    def velocity(self) -> tuple[float, float, float]:
        """The continuous move in force (pan, tilt, zoom)."""
        return self._velocity

    def continuous_move(self, pan: float, tilt: float, zoom: float) -> None:
        velocity = (check_velocity("pan", pan), check_velocity("tilt", tilt), check_velocity("zoom", zoom))
        with self._lock:
            self._advance()
            self._velocity = velocity

    def stop(self) -> None:
        with self._lock:
            self._advance()
            self._velocity = (0.0, 0.0, 0.0)

    def goto_preset(self, name: str) -> None:
        with self._lock:
            if check_preset_name(name) not in self._presets:
                raise PtzError(f"no preset {name!r}: saved ones are {sorted(self._presets)}")
            self._advance()
            self._velocity = (0.0, 0.0, 0.0)
            self._position = self._presets[name]

    def save_preset(self, name: str) -> None:
        with self._lock:
            self._advance()
            self._presets[check_preset_name(name)] = self._position

    def presets(self) -> list[str]:
        with self._lock:
            return sorted(self._presets)

    def set_position(self, position: PtzPosition) -> None:
        """Jump to ``position`` (clamped); an absolute move."""
        with self._lock:
            self._advance()
            self._position = self.geometry.clamp(position)

    def status(self) -> PtzStatus:
        with self._lock:
            self._advance()
            moving = any(v != 0.0 for v in self._velocity)
            return PtzStatus(self._position, moving)



def ptz_tick_entry(kind: str, status: PtzStatus, mode: str, view: dict | None = None) -> dict:
    """A camera's ``ptz`` entry of the tick (``spoton.live.tick``)."""
    entry = {"kind": kind, **status.as_dict(), "mode": mode}
    if view is not None:
        entry["view"] = view
    return entry


def viewport_view(geometry: PtzGeometry, position: PtzPosition, xyxy: np.ndarray, track_ids: np.ndarray,
                  global_ids: np.ndarray) -> dict:
    """The virtual PTZ's view for the tick: its viewport (source-normalised) and the tracks inside it,
    boxes in viewport coordinates clipped to it (``space: "processed"``); tracks outside are left out."""
    width, height = geometry.size
    x1, y1, x2, y2 = geometry.viewport(position)
    boxes = np.clip(geometry.to_viewport(xyxy, position), 0.0, 1.0)
    tracks = []
    for box, track_id, global_id in zip(boxes, track_ids, global_ids):
        if box[2] > box[0] and box[3] > box[1]:
            tracks.append({"track_id": int(track_id), "global_id": int(global_id),
                           "bbox": _rounded_box(box)})
    return {"space": "processed", "viewport": _rounded_box(np.array([x1 / width, y1 / height, x2 / width, y2 / height])),
            "tracks": tracks}


def _rounded_box(xyxy: np.ndarray) -> dict:
    x1, y1, x2, y2 = (float(np.clip(v, 0.0, 1.0)) for v in xyxy)
    return {"x": round(x1, 5), "y": round(y1, 5), "w": round(x2 - x1, 5), "h": round(y2 - y1, 5)}
