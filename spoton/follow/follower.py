"""Keeping one target through occlusions: its phase, a motion model and an appearance gallery.

The tracker gives track ids; the target is one of them. When that id is missing (an occlusion,
a tracker id switch, the target leaving a zoomed view), the follower looks for it among the
*new* tracks, ids first seen after the target's last sighting, and its *neighbours* at that
sighting (tracks within ``neighbour_heights`` target heights: the tracker may have handed the
target's box to one of them); other people in view are never candidates. A candidate is
re-acquired when both agree:

- motion: its box centre is within ``radius_heights`` target heights of where the target's last
  velocity puts it now, plus ``growth_heights_per_s`` heights per second unseen (a walking
  allowance; heights make it independent of distance to the camera);
- appearance: the cosine between its embedding and the mean of the target's gallery (the last
  ``gallery_size`` embeddings, taken every ``embed_every`` updates while the target is tracked
  and not overlapped by another box) is at least ``min_similarity``.

The best such candidate (highest similarity) becomes the target.

Trackers also swap ids when two people cross. So when the target comes out of an overlap with
other boxes (its *partners* during the overlap), or back after missed frames (then the partners
are the tracks near where it should be), its appearance is compared with theirs: a
partner that now matches the gallery better by ``swap_margin`` (and reaches ``swap_min_similarity``)
takes over as the target. Embeddings are computed only for the target (gallery), for candidates
while it is missing and at the end of an overlap, through the ``embed`` callback.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from spoton.follow.phase import PhaseConfig, PhaseMachine


@dataclass(frozen=True)
class ReacquireConfig:
    min_similarity: float = 0.85  # MobileNetV2 features: same person ~0.85, different ~0.73 (STACK.md)
    gallery_size: int = 30
    embed_every: int = 3
    radius_heights: float = 0.5
    growth_heights_per_s: float = 1.0
    max_overlap_iou: float = 0.2  # overlapped more than this by another box: no gallery crop, partners noted
    neighbour_heights: float = 1.0
    swap_margin: float = 0.05  # a partner must match the gallery this much better than the target's track
    swap_min_similarity: float = 0.8  # and at least this well (a relative test: looser than min_similarity)

    def __post_init__(self) -> None:
        if not -1 <= self.min_similarity <= 1:
            raise ValueError(f"min_similarity must be a cosine in [-1, 1], got {self.min_similarity}")
        if self.gallery_size < 1 or self.embed_every < 1:
            raise ValueError("gallery_size and embed_every must be >= 1")


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of xyxy boxes."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    x1, y1 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x2, y2 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda boxes: (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


class Follower:
    """One target among a tracker's tracks; ``update`` once per frame, returns the target's row."""

    def __init__(self, phase: PhaseConfig = PhaseConfig(), config: ReacquireConfig = ReacquireConfig()):
        self.config = config
        self.phase = PhaseMachine(phase)
        self.target_id: int | None = None
        self.gallery: deque[np.ndarray] = deque(maxlen=config.gallery_size)
        self.reacquired_by_appearance = 0
        self.swaps_fixed = 0
        self._first_seen: dict[int, float] = {}
        self._centre = np.zeros(2)
        self._velocity = np.zeros(2)
        self._height = 1.0
        self._last_seen: float | None = None
        self._updates = 0
        self._partners: set[int] = set()  # track ids that overlapped the target since it was last clear
        self._missed = False
        self._neighbours: set[int] = set()  # track ids close to the target at its last sighting

    def select(self, track_id: int, now: float) -> None:
        self.target_id = int(track_id)
        self.gallery.clear()
        self._last_seen = None
        self._velocity = np.zeros(2)
        self._partners.clear()
        self._neighbours.clear()
        self.phase.select(self.target_id, now)

    def clear(self, now: float) -> None:
        self.target_id = None
        self.gallery.clear()
        self.phase.clear(now)

    def update(self, track_ids: np.ndarray, xyxy: np.ndarray, now: float,
               embed: Callable[[np.ndarray], np.ndarray]) -> int | None:
        """The row of the target among this frame's tracks (None when unseen); ``embed(rows)`` gives
        (len(rows), D) unit embeddings of those rows' boxes."""
        track_ids = np.asarray(track_ids, np.int64)
        xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
        for track_id in track_ids:
            self._first_seen.setdefault(int(track_id), now)
        row = None
        if self.target_id is not None:
            rows = np.flatnonzero(track_ids == self.target_id)
            row = int(rows[0]) if len(rows) else self._reacquire(track_ids, xyxy, now, embed)
            if row is not None:
                if self._missed and self._last_seen is not None:
                    self._partners.update(int(t) for t in track_ids[self._near(xyxy, now)] if t != self.target_id)
                row = self._check_swap(row, track_ids, xyxy, embed)
            self._missed = row is None
        self.phase.update(row is not None, now)
        if self.phase.target_id is None:  # given up
            self.target_id = None
            return None
        if row is not None:
            self._observe(row, xyxy, now, embed)
        self._forget(track_ids)
        if row is not None:
            centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
            close = np.linalg.norm(centres - centres[row], axis=1) <= self.config.neighbour_heights * self._height
            self._neighbours = {int(t) for t in track_ids[close] if t != self.target_id}
        return row

    def _observe(self, row: int, xyxy: np.ndarray, now: float, embed) -> None:
        box = xyxy[row]
        centre = (box[:2] + box[2:]) / 2
        if self._last_seen is not None and now > self._last_seen:
            velocity = (centre - self._centre) / (now - self._last_seen)
            self._velocity = 0.7 * self._velocity + 0.3 * velocity
        self._centre, self._height, self._last_seen = centre, max(float(box[3] - box[1]), 1.0), now
        self._updates += 1
        overlap = iou_matrix(box, xyxy)[0]
        overlap[row] = 0.0
        clear = overlap.max(initial=0.0) <= self.config.max_overlap_iou
        if clear and (self._updates % self.config.embed_every == 1 or not self.gallery):
            self.gallery.append(embed(np.array([row]))[0])

    def _check_swap(self, row: int, track_ids: np.ndarray, xyxy: np.ndarray, embed) -> int:
        """The target's row, after the end of an overlap possibly a partner's (see the module docstring)."""
        overlap = iou_matrix(xyxy[row], xyxy)[0]
        overlap[row] = 0.0
        overlapped = overlap > self.config.max_overlap_iou
        self._partners.update(int(t) for t in track_ids[overlapped] if t != self.target_id)
        if overlapped.any() or not self._partners or not self.gallery:
            return row
        partners = [r for r in range(len(track_ids)) if int(track_ids[r]) in self._partners]
        self._partners.clear()
        if not partners:
            return row
        rows = np.array([row, *partners])
        similarity = self._similarity(rows, embed)
        best = int(np.argmax(similarity))
        if best == 0 or similarity[best] < self.config.swap_min_similarity \
                or similarity[best] - similarity[0] < self.config.swap_margin:
            return row
        self.target_id = int(track_ids[rows[best]])
        self.swaps_fixed += 1
        return int(rows[best])

    def _reacquire(self, track_ids: np.ndarray, xyxy: np.ndarray, now: float, embed) -> int | None:
        if self._last_seen is None or not self.gallery:
            return None
        new = np.array([self._first_seen[int(t)] > self._last_seen or int(t) in self._neighbours
                        for t in track_ids], bool)
        rows = np.flatnonzero(new & self._near(xyxy, now))
        if not len(rows):
            return None
        similarity = self._similarity(rows, embed)
        best = int(np.argmax(similarity))
        if similarity[best] < self.config.min_similarity:
            return None
        self.target_id = int(track_ids[rows[best]])
        self.reacquired_by_appearance += 1
        return int(rows[best])

    def _similarity(self, rows: np.ndarray, embed) -> np.ndarray:
        """Cosine of each row's embedding with the gallery's mean."""
        mean = np.mean(self.gallery, axis=0)
        return embed(rows) @ (mean / max(np.linalg.norm(mean), 1e-12))

    def _near(self, xyxy: np.ndarray, now: float) -> np.ndarray:
        """Which boxes are where the motion model puts the target now (bool per row)."""
        cfg, gap = self.config, now - self._last_seen
        predicted = self._centre + self._velocity * gap
        radius = self._height * (cfg.radius_heights + cfg.growth_heights_per_s * gap)
        return np.linalg.norm((xyxy[:, :2] + xyxy[:, 2:]) / 2 - predicted, axis=1) <= radius

    def _forget(self, track_ids: np.ndarray) -> None:
        """Bound the first-sightings table: past 4x the tracks in view, keep only those in view."""
        if len(self._first_seen) > 4 * max(len(track_ids), 16):
            current = {int(t) for t in track_ids}
            self._first_seen = {t: s for t, s in self._first_seen.items() if t in current}
