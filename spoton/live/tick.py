"""The live tick: what a session pushes per published instant, and its JSON Schema (``spoton.live.tick/1``).

Boxes are normalised to [0, 1] of the source frame, (x, y) top-left, the convention of the
``bbox_*`` table columns, so a client scales them to whatever size it displays the video at.
Velocity is the box centre's motion in normalised frame units per second of video time.
``media_ts`` names the frame on the media clock (90 kHz, the RTP video clock): the live API's
WebRTC tracks send that frame with it as ``pts``, so a player draws each tick on its own frame.
It counts from the session's creation to the moment the frame became available at its source.

``tracking_phase`` is the followed target's phase (:mod:`spoton.follow.phase`). A camera with a
PTZ (virtual or real) carries ``ptz``: its position, mode and motion, and for a virtual PTZ the
``view``: the viewport in source-normalised coordinates and the tracks inside it with boxes in
the viewport's own normalised coordinates (``space: "processed"``).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from spoton.follow.phase import PHASES
from spoton.records import PERSON_CLASS_ID, CameraFrameResult

TICK_SCHEMA_ID = "spoton.live.tick/1"
TICK_SCHEMA_URL_PATH = "/api/v1/schemas/tick.json"
MEDIA_CLOCK_HZ = 90_000
MEDIA_TS_STEP = 9  # media timestamps are multiples of 0.1 ms: exact through a microsecond time base too

_NUMBER_PAIR = {"type": "object", "required": ["x", "y"], "additionalProperties": False,
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_SIGNED_UNIT = {"type": "number", "minimum": -1, "maximum": 1}
_BOX = {"type": "object", "required": ["x", "y", "w", "h"], "additionalProperties": False,
        "properties": {"x": _UNIT, "y": _UNIT, "w": _UNIT, "h": _UNIT}}
_PTZ = {
    "type": "object",
    "required": ["kind", "pan", "tilt", "zoom", "mode", "moving"],
    "additionalProperties": False,
    "properties": {
        "kind": {"enum": ["virtual", "onvif"]},
        "pan": _SIGNED_UNIT, "tilt": _SIGNED_UNIT, "zoom": _UNIT,
        "mode": {"enum": ["auto", "manual"]},
        "moving": {"type": "boolean"},
        "view": {"type": "object", "required": ["space", "viewport", "tracks"], "additionalProperties": False,
                 "properties": {
                     "space": {"const": "processed"},
                     "viewport": _BOX,
                     "tracks": {"type": "array", "items": {
                         "type": "object", "required": ["track_id", "global_id", "bbox"],
                         "additionalProperties": False,
                         "properties": {"track_id": {"type": "integer"},
                                        "global_id": {"type": "integer", "minimum": 1}, "bbox": _BOX}}},
                 }},
    },
}

TICK_JSON_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": TICK_SCHEMA_ID,
    "title": "SpotOn live tick",
    "type": "object",
    "required": ["type", "schema", "session_id", "seq", "ts_unix_ms", "ts_mono_ms", "cameras",
                 "selected_target_id", "mode"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "tick"},
        "schema": {"const": TICK_SCHEMA_ID},
        "session_id": {"type": "string", "minLength": 1},
        "seq": {"type": "integer", "minimum": 0},
        "ts_unix_ms": {"type": "integer", "minimum": 0},
        "ts_mono_ms": {"type": "integer", "minimum": 0},
        "cameras": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["frame_index", "frame_ts", "media_ts", "frame_size", "space", "tracks"],
                "additionalProperties": False,
                "properties": {
                    "frame_index": {"type": "integer", "minimum": 0},
                    "frame_ts": {"type": "number", "minimum": 0},
                    "media_ts": {"type": "integer", "minimum": 0,
                                 "description": "the frame on the 90 kHz media clock (its WebRTC pts)"},
                    "frame_size": {"type": "object", "required": ["w", "h"], "additionalProperties": False,
                                   "properties": {"w": {"type": "integer", "minimum": 1},
                                                  "h": {"type": "integer", "minimum": 1}}},
                    "space": {"const": "source"},
                    "tracks": {"type": "array", "items": {
                        "type": "object",
                        "required": ["track_id", "global_id", "label", "conf", "bbox", "velocity", "map"],
                        "additionalProperties": False,
                        "properties": {
                            "track_id": {"type": "integer"},
                            "global_id": {"type": "integer", "minimum": 1},
                            "label": {"type": "string"},
                            "conf": _UNIT,
                            "bbox": _BOX,
                            "velocity": _NUMBER_PAIR,
                            "map": {"oneOf": [{"type": "null"}, _NUMBER_PAIR]},
                        }}},
                    "ptz": _PTZ,
                }},
        },
        "selected_target_id": {"type": ["integer", "null"]},
        "mode": {"enum": ["auto", "manual"]},
        "tracking_phase": {"enum": list(PHASES)},
    },
}


def media_timestamp(seconds: float) -> int:
    """Seconds on a monotonic clock as a media timestamp (``MEDIA_CLOCK_HZ`` units, a multiple of
    ``MEDIA_TS_STEP``: the VP8 encoder rebases pts to microseconds and back, which other values miss by one)."""
    return max(int(round(seconds * MEDIA_CLOCK_HZ / MEDIA_TS_STEP)), 0) * MEDIA_TS_STEP


def normalised_boxes(xyxy: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """(N, 4) x, y, w, h in [0, 1] of the frame; boxes reaching past the border are clipped."""
    width, height = frame_size
    scaled = np.asarray(xyxy, np.float64) / np.array([width, height, width, height])
    scaled = np.clip(scaled, 0.0, 1.0)
    return np.column_stack([scaled[:, :2], scaled[:, 2:] - scaled[:, :2]])


class TickBuilder:
    """Builds ticks for one session; remembers each track's last centre to give its velocity.

    A tick may repeat a camera's latest result (no new frame since): its velocity is kept.
    """

    def __init__(self, session_id: str):
        self.session_id = session_id
        self.seq = 0
        self._last_centre: dict[tuple[str, int], tuple[float, np.ndarray, np.ndarray]] = {}

    def build(self, results: Mapping[str, CameraFrameResult], global_ids: Mapping[str, np.ndarray],
              *, selected_target_id: int | None, mode: str, media_ts: Mapping[str, int], ts_unix_ms: int,
              ts_mono_ms: int, tracking_phase: str = "IDLE", ptz: Mapping[str, dict] | None = None) -> dict:
        """One tick; ``ptz`` holds the ``ptz`` entry of each camera that has one."""
        cameras = {}
        seen: set[tuple[str, int]] = set()
        for camera, result in results.items():
            boxes = normalised_boxes(result.tracks.xyxy, result.frame_size)
            tracks = []
            for row, box in enumerate(boxes):
                track_id = int(result.tracks.track_id[row])
                centre = box[:2] + box[2:] / 2
                velocity = np.zeros(2)
                previous = self._last_centre.get((camera, track_id))
                if previous is not None and result.ts > previous[0]:
                    velocity = (centre - previous[1]) / (result.ts - previous[0])
                elif previous is not None and result.ts == previous[0]:  # same frame, ticked again
                    centre, velocity = previous[1], previous[2]
                self._last_centre[(camera, track_id)] = (result.ts, centre, velocity)
                seen.add((camera, track_id))
                class_id = int(result.tracks.class_id[row])
                map_xy = result.map_xy[row]
                tracks.append({
                    "track_id": track_id,
                    "global_id": int(global_ids[camera][row]),
                    "label": "person" if class_id == PERSON_CLASS_ID else f"class_{class_id}",
                    "conf": round(float(np.clip(result.tracks.confidence[row], 0, 1)), 4),
                    "bbox": {k: round(float(v), 5) for k, v in zip("xywh", box)},
                    "velocity": {"x": round(float(velocity[0]), 5), "y": round(float(velocity[1]), 5)},
                    "map": ({"x": round(float(map_xy[0]), 3), "y": round(float(map_xy[1]), 3)}
                            if np.all(np.isfinite(map_xy)) else None),
                })
            width, height = result.frame_size
            cameras[camera] = {"frame_index": int(result.frame_index), "frame_ts": round(float(result.ts), 4),
                               "media_ts": int(media_ts[camera]),
                               "frame_size": {"w": int(width), "h": int(height)}, "space": "source",
                               "tracks": tracks}
            if ptz and camera in ptz:
                cameras[camera]["ptz"] = ptz[camera]
        present = set(results)
        self._last_centre = {key: value for key, value in self._last_centre.items()
                             if key in seen or key[0] not in present}
        tick = {"type": "tick", "schema": TICK_SCHEMA_ID, "session_id": self.session_id, "seq": self.seq,
                "ts_unix_ms": int(ts_unix_ms), "ts_mono_ms": int(ts_mono_ms), "cameras": cameras,
                "selected_target_id": selected_target_id, "mode": mode, "tracking_phase": tracking_phase}
        self.seq += 1
        return tick
