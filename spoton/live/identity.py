"""Online cross-camera global ids for live sessions: a per-session gallery matched on the floor plan.

The offline resolver (``spoton.identity.resolver``) sees whole tracklets; live there is only the present.
Each global identity remembers its last map position and when and by which camera tracks it
was seen. A (camera, track id) seen for the first time joins the nearest identity whose last
position is within ``join_radius_m`` plus a walking allowance for the time since, unless that
identity is already held by another live track of the *same* camera (cannot-link: a tracker
never gives one person two ids at once); otherwise it founds a new identity. Once bound, a
track keeps its global id for its life. Cameras share the floor plan, so a person in an overlap
seen by two cameras gets one id, and a tracker id switch within ``max_gap_s`` is healed.

Tracks without a map position (uncalibrated camera) each get an identity of their own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spoton.records import CameraFrameResult


@dataclass(frozen=True)
class LiveIdentityConfig:
    join_radius_m: float = 1.2  # two cameras' map positions of one person differ by calibration error
    max_speed_mps: float = 2.0  # walking allowance added to the radius per second since last seen
    max_gap_s: float = 3.0  # an identity unseen for longer is not joined any more
    track_alive_s: float = 0.5  # a track seen this recently still holds its identity in its camera


@dataclass
class _Identity:
    global_id: int
    map_xy: np.ndarray
    last_ts: float
    holders: dict[str, tuple[int, float]] = field(default_factory=dict)  # camera -> (track id, ts)


class LiveIdentityGallery:
    """Assigns global ids to (camera, track id) pairs, instant by instant; one gallery per session."""

    def __init__(self, config: LiveIdentityConfig = LiveIdentityConfig()):
        self.config = config
        self._next_id = 1
        self._identities: dict[int, _Identity] = {}
        self._bound: dict[tuple[str, int], int] = {}

    def __len__(self) -> int:
        return len(self._identities)

    @property
    def last_issued(self) -> int:
        """The highest global id handed out so far (0 before the first)."""
        return self._next_id - 1

    def issued(self, global_id: int) -> bool:
        """Whether ``global_id`` was ever handed out (it may be out of view or forgotten since)."""
        return 1 <= global_id <= self.last_issued

    def _new_identity(self, map_xy: np.ndarray, ts: float) -> _Identity:
        identity = _Identity(self._next_id, map_xy, ts)
        self._identities[identity.global_id] = identity
        self._next_id += 1
        return identity

    def _held_elsewhere(self, identity: _Identity, camera: str, track_id: int, ts: float) -> bool:
        holder = identity.holders.get(camera)
        return (holder is not None and holder[0] != track_id
                and ts - holder[1] <= self.config.track_alive_s)

    def _best_match(self, camera: str, track_id: int, map_xy: np.ndarray, ts: float,
                    taken: set[int]) -> _Identity | None:
        best, best_distance = None, math.inf
        for identity in self._identities.values():
            gap = ts - identity.last_ts
            if identity.global_id in taken or gap > self.config.max_gap_s:
                continue
            if self._held_elsewhere(identity, camera, track_id, ts):
                continue
            distance = float(np.hypot(*(identity.map_xy - map_xy)))
            if distance <= self.config.join_radius_m + self.config.max_speed_mps * max(gap, 0.0) \
                    and distance < best_distance:
                best, best_distance = identity, distance
        return best

    def update(self, results: dict[str, CameraFrameResult], now: float) -> dict[str, np.ndarray]:
        """Global id per track of each camera's result (arrays aligned with ``result.tracks``).

        ``now`` is the session clock in seconds (live cameras' own frame times need not agree).
        """
        ids = {camera: np.zeros(len(result.tracks), np.int64) for camera, result in results.items()}
        fresh: list[tuple[str, int, int, np.ndarray, float]] = []
        taken_now: dict[str, set[int]] = {camera: set() for camera in results}
        for camera, result in results.items():
            for row, (track_id, map_xy) in enumerate(zip(result.tracks.track_id, result.map_xy)):
                global_id = self._bound.get((camera, int(track_id)))
                if global_id is None:
                    fresh.append((camera, row, int(track_id), map_xy, now))
                    continue
                self._touch(self._identities[global_id], camera, int(track_id), map_xy, now)
                ids[camera][row] = global_id
                taken_now[camera].add(global_id)
        for camera, row, track_id, map_xy, ts in fresh:
            identity = None
            if np.all(np.isfinite(map_xy)):
                identity = self._best_match(camera, track_id, map_xy, ts, taken_now[camera])
            if identity is None:
                identity = self._new_identity(np.asarray(map_xy, np.float64), ts)
            self._bound[(camera, track_id)] = identity.global_id
            self._touch(identity, camera, track_id, map_xy, ts)
            ids[camera][row] = identity.global_id
            taken_now[camera].add(identity.global_id)
        self._forget(now)
        return ids

    def _touch(self, identity: _Identity, camera: str, track_id: int, map_xy: np.ndarray,
               ts: float) -> None:
        if np.all(np.isfinite(map_xy)):
            identity.map_xy = np.asarray(map_xy, np.float64)
        identity.last_ts = max(identity.last_ts, ts)
        identity.holders[camera] = (track_id, ts)

    def _forget(self, now: float) -> None:
        """Drop identities unseen for long, and their bindings, so memory stays bounded."""
        horizon = 10 * self.config.max_gap_s
        stale = [gid for gid, identity in self._identities.items() if now - identity.last_ts > horizon]
        for gid in stale:
            del self._identities[gid]
        if stale:
            gone = set(stale)
            self._bound = {key: gid for key, gid in self._bound.items() if gid not in gone}
