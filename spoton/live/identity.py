"""Online global ids for live sessions: a gallery matched on the floor plan and on appearance.

The offline resolver (``spoton.identity.resolver``) sees whole tracklets; live there is only the present.
Each global identity remembers its last map position, when and by which camera tracks it was
seen, and its appearance (the running mean of its tracks' crop embeddings, see
:class:`AppearanceSampler`). A (camera, track id) seen for the first time joins an identity
whose last position is within ``join_radius_m`` plus a walking allowance for the time since,
unless that identity is already held by another live track of the *same* camera (cannot-link: a
tracker never gives one person two ids at once); otherwise it founds a new identity. Once bound,
a track keeps its global id for its life, with one exception below. Cameras share the floor
plan, so a person in an overlap seen by two cameras gets one id, and a tracker id switch within
``max_gap_s`` is healed.

Appearance: an identity unseen for up to ``reacquire_gap_s`` (longer than ``max_gap_s``: an
occlusion, a walk behind a pillar) is taken up again by a new track when appearance and motion
agree: the cosine between the track's embedding and the identity's appearance is at least
``min_similarity`` and the walking allowance covers the distance. Where both an appearance match
and a position-only candidate exist, the best appearance match wins. A new track's first crop may
be poor (it is still half occluded), so a track whose identity it founded itself less than
``rebind_s`` ago is re-checked with each new embedding and moves to the old identity if it
matches (its global id in the ticks changes once, to the old one).

With an :class:`IdentityShare` (Redis, across API instances) ids are issued environment-wide
and identities with their appearance are published, so a person a session on another instance
saw recently is re-acquired here with the same global id.

Tracks without a map position (uncalibrated camera) each get an identity of their own.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Protocol

import numpy as np

from spoton.models.base import Embedder
from spoton.records import CameraFrameResult

log = logging.getLogger(__name__)
SHARE_RETRY_S = 5.0  # after a share error, the gallery works alone this long (a Redis outage costs no frame rate)


@dataclass(frozen=True)
class LiveIdentityConfig:
    join_radius_m: float = 1.2  # two cameras' map positions of one person differ by calibration error
    max_speed_mps: float = 2.0  # walking allowance added to the radius per second since last seen
    max_gap_s: float = 3.0  # an identity unseen for longer is not joined by position alone any more
    track_alive_s: float = 0.5  # a track seen this recently still holds its identity in its camera
    reacquire_gap_s: float = 10.0  # appearance and motion together may join an identity unseen this long
    min_similarity: float = 0.82  # MobileNetV2: same person ~0.85, different ~0.73 (a track's crop vs a mean)
    rebind_s: float = 1.0  # a track's self-founded identity this young may still move to an old one
    appearance_memory: int = 10  # the appearance is a running mean over about this many crops
    publish_every_s: float = 1.0  # an identity's record in the share is refreshed at most this often

    def __post_init__(self) -> None:
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be a cosine in [-1, 1], got {self.min_similarity}")
        if self.reacquire_gap_s < self.max_gap_s:
            raise ValueError(f"reacquire_gap_s ({self.reacquire_gap_s}) must be >= max_gap_s ({self.max_gap_s})")


@dataclass(frozen=True)
class SharedIdentity:
    """An identity as another gallery published it: ``age_s`` since it was last seen."""

    global_id: int
    appearance: np.ndarray
    map_xy: np.ndarray
    age_s: float


class IdentityShare(Protocol):
    """Identities shared by the galleries of one environment (``RedisIdentityShare``)."""

    def issue_id(self) -> int: ...

    def publish(self, identities: list[SharedIdentity]) -> None: ...

    def recent(self) -> list[SharedIdentity]: ...


@dataclass
class _Identity:
    global_id: int
    map_xy: np.ndarray
    last_ts: float
    founded_ts: float
    holders: dict[str, tuple[int, float]] = field(default_factory=dict)  # camera -> (track id, ts)
    appearance: np.ndarray | None = None  # unit vector
    crops: int = 0
    founder: tuple[str, int] | None = None  # the (camera, track id) that founded it
    published_ts: float = -math.inf

    def observe(self, embedding: np.ndarray, memory: int) -> None:
        mean = embedding if self.appearance is None else self.appearance * min(self.crops, memory) + embedding
        self.appearance = mean / max(float(np.linalg.norm(mean)), 1e-12)
        self.crops += 1


class LiveIdentityGallery:
    """Assigns global ids to (camera, track id) pairs, instant by instant; one gallery per session."""

    def __init__(self, config: LiveIdentityConfig = LiveIdentityConfig(), share: IdentityShare | None = None):
        self.config = config
        self.share = share
        self._next_id = 1
        self._issued: set[int] = set()
        self._identities: dict[int, _Identity] = {}
        self._bound: dict[tuple[str, int], int] = {}
        self.reacquired = 0  # identities taken up again by appearance (after max_gap_s, or a rebind)
        self.adopted = 0  # of those, identities another gallery published
        self._share_retry_at = -math.inf

    def __len__(self) -> int:
        return len(self._identities)

    @property
    def last_issued(self) -> int:
        """The highest global id handed out or adopted so far (0 before the first)."""
        return max(self._issued, default=0)

    def issued(self, global_id: int) -> bool:
        """Whether ``global_id`` was ever handed out here (it may be out of view or forgotten since)."""
        return global_id in self._issued

    def _share_usable(self) -> bool:
        return self.share is not None and time.monotonic() >= self._share_retry_at

    def _share_failed(self, exc: Exception, what: str) -> None:
        self._share_retry_at = time.monotonic() + SHARE_RETRY_S
        log.warning("identity share unavailable (%s): %s for %.0f s", type(exc).__name__, what, SHARE_RETRY_S)

    def _issue(self) -> int:
        if self._share_usable():
            try:
                global_id = self.share.issue_id()
                self._next_id = max(self._next_id, global_id + 1)
                return global_id
            except Exception as exc:  # ids stay unique here, maybe not across instances meanwhile
                self._share_failed(exc, "issuing local ids")
        global_id = max(self._next_id, self.last_issued + 1)
        self._next_id = global_id + 1
        return global_id

    def _new_identity(self, map_xy: np.ndarray, ts: float, founder: tuple[str, int] | None,
                      global_id: int | None = None) -> _Identity:
        identity = _Identity(global_id or self._issue(), np.asarray(map_xy, np.float64), ts, ts, founder=founder)
        self._identities[identity.global_id] = identity
        self._issued.add(identity.global_id)
        return identity

    def _held_elsewhere(self, identity: _Identity, camera: str, track_id: int, ts: float) -> bool:
        holder = identity.holders.get(camera)
        return (holder is not None and holder[0] != track_id
                and ts - holder[1] <= self.config.track_alive_s)

    def _reachable(self, map_xy: np.ndarray, last_xy: np.ndarray, gap: float) -> float | None:
        """The distance when a walk covers it in ``gap`` seconds, else None."""
        distance = float(np.hypot(*(last_xy - map_xy)))
        return distance if distance <= self.config.join_radius_m + self.config.max_speed_mps * max(gap, 0.0) else None

    def _best_match(self, camera: str, track_id: int, map_xy: np.ndarray, ts: float, taken: set[int],
                    embedding: np.ndarray | None, *, appearance_only: bool = False) -> _Identity | SharedIdentity | None:
        """Position-only within ``max_gap_s`` (nearest), or appearance and motion within
        ``reacquire_gap_s`` (most similar, preferred); see the module docstring."""
        cfg = self.config
        by_position, by_position_distance = None, math.inf
        by_appearance, best_similarity = None, cfg.min_similarity
        for identity in self._identities.values():
            gap = ts - identity.last_ts
            if identity.global_id in taken or gap > cfg.reacquire_gap_s or identity.founder == (camera, track_id):
                continue
            if self._held_elsewhere(identity, camera, track_id, ts):
                continue
            distance = self._reachable(map_xy, identity.map_xy, gap)
            if distance is None:
                continue
            if embedding is not None and identity.appearance is not None:
                similarity = float(embedding @ identity.appearance)
                if similarity >= best_similarity:
                    by_appearance, best_similarity = identity, similarity
            if not appearance_only and gap <= cfg.max_gap_s and distance < by_position_distance:
                by_position, by_position_distance = identity, distance
        if embedding is not None and self._share_usable():
            for shared in self._shared():
                if shared.global_id in taken or shared.global_id in self._identities:
                    continue
                if shared.age_s > cfg.reacquire_gap_s or self._reachable(map_xy, shared.map_xy, shared.age_s) is None:
                    continue
                similarity = float(embedding @ shared.appearance)
                if similarity >= best_similarity:
                    by_appearance, best_similarity = shared, similarity
        return by_appearance or by_position

    def _shared(self) -> list[SharedIdentity]:
        try:
            return self.share.recent()
        except Exception as exc:
            self._share_failed(exc, "matching local identities only")
            return []

    def _take_up(self, match: _Identity | SharedIdentity, ts: float) -> _Identity:
        """The local identity of a match; a shared one is adopted (same global id)."""
        if isinstance(match, _Identity):
            if ts - match.last_ts > self.config.max_gap_s:
                self.reacquired += 1
            return match
        identity = self._new_identity(match.map_xy, ts - match.age_s, None, match.global_id)
        identity.appearance, identity.crops = match.appearance, 1
        self.reacquired += 1
        self.adopted += 1
        return identity

    def update(self, results: dict[str, CameraFrameResult], now: float,
               embeddings: Mapping[str, Mapping[int, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
        """Global id per track of each camera's result (arrays aligned with ``result.tracks``).

        ``now`` is the session clock in seconds (live cameras' own frame times need not agree);
        ``embeddings`` holds unit appearance vectors of some tracks: camera -> {row: vector}.
        """
        embeddings = embeddings or {}
        ids = {camera: np.zeros(len(result.tracks), np.int64) for camera, result in results.items()}
        fresh: list[tuple[str, int, int, np.ndarray]] = []
        taken_now: dict[str, set[int]] = {camera: set() for camera in results}
        for camera, result in results.items():
            for row, (track_id, map_xy) in enumerate(zip(result.tracks.track_id, result.map_xy)):
                global_id = self._bound.get((camera, int(track_id)))
                if global_id is None:
                    fresh.append((camera, row, int(track_id), map_xy))
                    continue
                global_id = self._maybe_rebind(camera, int(track_id), map_xy, now,
                                               embeddings.get(camera, {}).get(row), taken_now[camera])
                self._touch(self._identities[global_id], camera, int(track_id), map_xy, now,
                            embeddings.get(camera, {}).get(row))
                ids[camera][row] = global_id
                taken_now[camera].add(global_id)
        for camera, row, track_id, map_xy in fresh:
            embedding = embeddings.get(camera, {}).get(row)
            identity = None
            if np.all(np.isfinite(map_xy)):
                match = self._best_match(camera, track_id, map_xy, now, taken_now[camera], embedding)
                identity = None if match is None else self._take_up(match, now)
            if identity is None:
                identity = self._new_identity(map_xy, now, (camera, track_id))
            self._bound[(camera, track_id)] = identity.global_id
            self._touch(identity, camera, track_id, map_xy, now, embedding)
            ids[camera][row] = identity.global_id
            taken_now[camera].add(identity.global_id)
        self._forget(now)
        self._publish(now)
        return ids

    def _maybe_rebind(self, camera: str, track_id: int, map_xy: np.ndarray, now: float,
                      embedding: np.ndarray | None, taken: set[int]) -> int:
        """A young self-founded identity whose new crop matches an old identity moves to it."""
        global_id = self._bound[(camera, track_id)]
        identity = self._identities[global_id]
        if (embedding is None or identity.founder != (camera, track_id) or now - identity.founded_ts > self.config.rebind_s
                or not np.all(np.isfinite(map_xy)) or len(identity.holders) > 1):
            return global_id
        match = self._best_match(camera, track_id, map_xy, now, taken | {global_id}, embedding, appearance_only=True)
        if match is None:
            return global_id
        old = self._take_up(match, now)
        if isinstance(match, _Identity) and now - match.last_ts <= self.config.max_gap_s:
            self.reacquired += 1  # a recent one: still a re-acquisition by appearance
        del self._identities[global_id]
        self._bound[(camera, track_id)] = old.global_id
        return old.global_id

    def _touch(self, identity: _Identity, camera: str, track_id: int, map_xy: np.ndarray, ts: float,
               embedding: np.ndarray | None = None) -> None:
        if np.all(np.isfinite(map_xy)):
            identity.map_xy = np.asarray(map_xy, np.float64)
        identity.last_ts = max(identity.last_ts, ts)
        identity.holders[camera] = (track_id, ts)
        if embedding is not None:
            identity.observe(np.asarray(embedding, np.float32), self.config.appearance_memory)

    def _publish(self, now: float) -> None:
        """Identities seen now with an appearance, each at most every ``publish_every_s``."""
        if not self._share_usable():
            return
        due = [i for i in self._identities.values() if i.appearance is not None and i.last_ts == now
               and now - i.published_ts >= self.config.publish_every_s and np.all(np.isfinite(i.map_xy))]
        if not due:
            return
        try:
            self.share.publish([SharedIdentity(i.global_id, i.appearance, i.map_xy, 0.0) for i in due])
        except Exception as exc:
            self._share_failed(exc, "not publishing identities")
            return
        for identity in due:
            identity.published_ts = now

    def _forget(self, now: float) -> None:
        """Drop identities unseen for long, and their bindings, so memory stays bounded."""
        horizon = max(10 * self.config.max_gap_s, 2 * self.config.reacquire_gap_s)
        stale = [gid for gid, identity in self._identities.items() if now - identity.last_ts > horizon]
        for gid in stale:
            del self._identities[gid]
        alive = set(self._identities)
        if stale or len(self._bound) > 4 * max(len(alive), 16):
            self._bound = {key: gid for key, gid in self._bound.items() if gid in alive}


class AppearanceSampler:
    """Which tracks to embed this instant, and their embeddings, cheaply.

    A track is embedded on its first frame (a re-acquisition needs it at once) and then every
    ``every_n_frames`` of its camera; at most ``max_crops`` per camera per instant (new tracks
    first, then the longest waiting), in one batched ``embed`` call per camera. Boxes shorter than
    ``min_height_px`` are skipped (too few pixels to say anything).
    """

    def __init__(self, embedder: Embedder, every_n_frames: int = 5, max_crops: int = 8, min_height_px: float = 24.0):
        if every_n_frames < 1 or max_crops < 1:
            raise ValueError("every_n_frames and max_crops must be >= 1")
        self.embedder = embedder
        self.every_n_frames, self.max_crops, self.min_height_px = every_n_frames, max_crops, min_height_px
        self._frame: dict[str, int] = {}
        self._last: dict[tuple[str, int], int] = {}  # (camera, track id) -> camera frame of its last crop
        self.crops = 0
        self.seconds = 0.0

    def sample(self, results: Mapping[str, CameraFrameResult],
               images: Mapping[str, np.ndarray]) -> dict[str, dict[int, np.ndarray]]:
        started = time.perf_counter()
        out: dict[str, dict[int, np.ndarray]] = {}
        for camera, result in results.items():
            frame = self._frame[camera] = self._frame.get(camera, -1) + 1
            xyxy, track_ids = result.tracks.xyxy, result.tracks.track_id
            due = []
            for row, track_id in enumerate(track_ids):
                last = self._last.get((camera, int(track_id)))
                if xyxy[row, 3] - xyxy[row, 1] < self.min_height_px:
                    continue
                if last is None or frame - last >= self.every_n_frames:
                    due.append((last if last is not None else -10**9, row))
            rows = [row for _, row in sorted(due)[:self.max_crops]]
            if not rows:
                continue
            vectors = self.embedder.embed(images[camera], xyxy[rows])
            out[camera] = {row: vector for row, vector in zip(rows, vectors)}
            for row in rows:
                self._last[(camera, int(track_ids[row]))] = frame
            self.crops += len(rows)
        if len(self._last) > 4096:  # bound memory: keep the recent
            newest = max(self._frame.values(), default=0)
            self._last = {k: f for k, f in self._last.items() if newest - f < 10 * self.every_n_frames}
        self.seconds += time.perf_counter() - started
        return out


class RedisIdentityShare:
    """Identities of one environment in Redis: ``{prefix}:identity:{environment}:next`` (INCR, the ids)
    and ``...:gallery`` (a hash global id -> last seen wall time, map x/y and appearance, float32).

    ``client`` is a synchronous redis-py client. Reads are cached for ``refresh_s``; records older than
    ``max_age_s`` are ignored and pruned.
    """

    def __init__(self, client, environment: str, prefix: str = "spoton", max_age_s: float = 30.0,
                 refresh_s: float = 1.0, clock=time.time):
        self.client, self.max_age_s, self.refresh_s, self.clock = client, max_age_s, refresh_s, clock
        self.ids_key = f"{prefix}:identity:{environment}:next"
        self.gallery_key = f"{prefix}:identity:{environment}:gallery"
        self._cache: list[SharedIdentity] = []
        self._cached_at = -math.inf
        self._pruned_at = -math.inf

    def issue_id(self) -> int:
        return int(self.client.incr(self.ids_key))

    def publish(self, identities: list[SharedIdentity]) -> None:
        now = self.clock()
        pipe = self.client.pipeline(transaction=False)
        for identity in identities:
            head = np.array([now - identity.age_s, *identity.map_xy], np.float64).tobytes()
            pipe.hset(self.gallery_key, str(identity.global_id), head + np.asarray(identity.appearance, np.float32).tobytes())
        pipe.expire(self.gallery_key, int(self.max_age_s * 10))
        pipe.execute()
        if now - self._pruned_at >= self.max_age_s:
            self._pruned_at = now
            stale = [gid for gid, shared in self._read(now).items() if shared.age_s > self.max_age_s]
            if stale:
                self.client.hdel(self.gallery_key, *stale)

    def _read(self, now: float) -> dict[str, SharedIdentity]:
        records = {}
        for gid, value in self.client.hgetall(self.gallery_key).items():
            head = np.frombuffer(value[:24], np.float64)
            records[gid.decode() if isinstance(gid, bytes) else gid] = SharedIdentity(
                int(gid), np.frombuffer(value[24:], np.float32), head[1:3].copy(), max(now - float(head[0]), 0.0))
        return records

    def recent(self) -> list[SharedIdentity]:
        now = self.clock()
        if now - self._cached_at >= self.refresh_s:
            self._cache = [s for s in self._read(now).values() if s.age_s <= self.max_age_s]
            self._cached_at = now
            return self._cache
        return [SharedIdentity(s.global_id, s.appearance, s.map_xy, s.age_s + now - self._cached_at)
                for s in self._cache]
