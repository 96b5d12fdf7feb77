"""The closed follow loop over a PTZ camera: frame -> detect -> track -> follow -> PTZ command -> next frame.

Detections come in the camera's picture (the viewport); with the PTZ's position and its
:class:`~spoton.follow.ptz.PtzGeometry` they are mapped to the wide picture's coordinates
before tracking, so the tracker sees people walk, not the camera pan. For the virtual PTZ and the
simulator the geometry is exact; a real camera needs its field-of-view model here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spoton.follow.controller import FramingController
from spoton.follow.follower import Follower
from spoton.follow.ptz import PtzController, PtzGeometry, PtzPosition
from spoton.models.base import Detector, Embedder
from spoton.records import Detections
from spoton.perception.tracking import Tracker


@dataclass(frozen=True)
class FollowStep:
    """What one frame of the loop saw (boxes in wide-picture pixels)."""

    track_ids: np.ndarray
    xyxy: np.ndarray
    target_row: int | None
    phase: str


class FollowLoop:
    """Drives ``ptz`` so that its picture frames the follower's target; ``step`` once per frame."""

    def __init__(self, ptz: PtzController, geometry: PtzGeometry, detector: Detector, tracker: Tracker,
                 embedder: Embedder, follower: Follower | None = None, framing: FramingController | None = None):
        self.ptz, self.geometry = ptz, geometry
        self.detector, self.tracker, self.embedder = detector, tracker, embedder
        self.follower = follower or Follower()
        self.framing = framing or FramingController(geometry)
        self.commands_sent = 0
        self._command = (0.0, 0.0, 0.0)
        self._last: float | None = None

    def step(self, picture: np.ndarray, position: PtzPosition, now: float) -> FollowStep:
        """One frame ``picture`` taken at ``position`` at time ``now`` (seconds)."""
        out_size = (picture.shape[1], picture.shape[0])
        found = self.detector.detect(picture)
        wide = self.geometry.to_picture(found.xyxy, position, out_size)
        tracks = self.tracker.update(Detections(wide, found.confidence, found.class_id), picture)

        def embed(rows: np.ndarray) -> np.ndarray:
            boxes = self.geometry.to_viewport(tracks.xyxy[rows], position) * [*out_size, *out_size]
            return self.embedder.embed(picture, boxes)

        row = self.follower.update(tracks.track_id, tracks.xyxy, now, embed)
        box = None if row is None else self.geometry.to_viewport(tracks.xyxy[row], position)[0]
        dt = 0.0 if self._last is None else now - self._last
        self._last = now
        command = self.framing.command(box, position, dt) if self.follower.target_id is not None else (0.0, 0.0, 0.0)
        if command != self._command:  # a continuous move holds until the next command
            if command == (0.0, 0.0, 0.0):
                self.ptz.stop()
            else:
                self.ptz.continuous_move(*command)
            self.commands_sent += 1
            self._command = command
        return FollowStep(np.asarray(tracks.track_id), np.asarray(tracks.xyxy), row, self.follower.phase.phase)
