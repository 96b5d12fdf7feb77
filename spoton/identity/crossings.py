"""Crossings: where two people's boxes overlap, decide who leaves as whom by assignment.

A tracker associates boxes frame to frame by IoU; where two people cross, their boxes overlap and
it may hand each track to the other person (an ID switch inside a track, which no later stitching
sees). This module finds those crossings in one camera's tracks and re-decides them:

1. :func:`find_crossings`: a *crossing* is a run of at least ``min_frames`` frames in which two
   tracks' boxes overlap by at least ``min_overlap`` (intersection over the smaller box), runs of
   one pair less than ``join_gap_frames`` apart merged. An *occlusion* is one too: a track lost
   under another track's box, or where a new track starts on its last box (:func:`_lost_events`).
   Events sharing a track at overlapping times merge into one (three people crossing at once are
   one event), up to ``max_frames``; a longer event is people walking together, not a crossing:
   left alone.
2. Each track in an event is cut at the event's start and end: the piece *entering* (its frames
   before the start) and the piece *leaving* (after the end). The frames inside the event stay
   with the entering piece: there the boxes overlap, and who is who is not observable.
3. Every (entering, leaving) pair is scored by motion and appearance:
   - motion: line fits (position, velocity) over ``context_frames`` frames before the start and
     after the end, each predicted through the crossing to the other (constant velocity), the
     error the mean of both misses, in metres on the map (or pixel foot points scaled by the box
     height without a calibration), scored ``1 - error / (position_slack_m +
     speed_uncertainty_mps x gap)``;
   - appearance: cosine of the mean embeddings of up to ``crops`` crops each side, taken from
     frames where the box overlaps no other box by more than ``clear_overlap`` (the person not
     occluded), ``appearance_weight x (cosine - appearance_neutral)``; 0 without embeddings. The
     callers embed them at ``crop_size`` (224x224: with the tracklets' 64x128 the single-camera
     grid lost up to 6.7 IDF1 points, docs/benchmarks.md).
4. The continuation is one assignment per event (Hungarian, :func:`scipy.optimize.linear_sum_assignment`
   on the scores, pairs under ``min_score`` left unmatched). It replaces the tracker's own
   continuation (each track leaving as itself) only when it scores at least ``margin`` more: a
   crossing where nobody swapped stays as it is. An unmatched leaving piece starts a new track,
   an unmatched entering one ends; stitching may still join them.

:func:`resolve_crossings` returns the corrected track id of every row and the decisions, so each
swap can be explained. It only reads the boxes; crops are embedded by the caller's ``embed``
(the CLI and the pipeline pass one that decodes their video, :func:`spoton.perception.appearance.embed_tracklets`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

BOX = ["x1", "y1", "x2", "y2"]
DECISION_COLUMNS = ["start_frame", "end_frame", "tracks", "entering", "leaving", "tracker_score",
                    "assigned_score", "swapped"]

# (crop rows: tracklet_id, camera, frame_index, x1..y2, conf) -> tracklet_id -> unit mean embedding
Embed = Callable[[pd.DataFrame], dict[str, np.ndarray]]


@dataclass(frozen=True)
class CrossingConfig:
    """What counts as a crossing and how the continuation through it is scored (module docstring).

    Frames count processed frames; the defaults are for the sample's 7 frames/s.
    """

    min_overlap: float = 0.5
    min_frames: int = 2
    max_frames: int = 28
    lost_overlap: float | None = 0.3
    join_gap_frames: int = 2
    context_frames: int = 7
    clear_overlap: float = 0.1
    crops: int = 3
    crop_size: tuple[int, int] = (224, 224)  # MobileNetV2's own input: at 64x128 the decisions got worse
    position_slack_m: float = 0.5
    speed_uncertainty_mps: float = 1.0
    max_speed_mps: float = 2.5
    person_height_m: float = 1.7
    motion_weight: float = 1.0
    appearance_weight: float = 12.0
    appearance_neutral: float = 0.79
    min_score: float = -1.0
    margin: float = 0.5

    def __post_init__(self):
        if not 0 < self.min_overlap <= 1:
            raise ValueError(f"min_overlap is a fraction of the smaller box, in (0, 1]; got {self.min_overlap}")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 1 <= min_frames <= max_frames, got {self.min_frames} and {self.max_frames}")


@dataclass(frozen=True)
class Crossing:
    """Tracks whose boxes overlapped (or one hid another) from ``start`` to ``end`` (processed
    frames, inclusive)."""

    tracks: tuple
    start: int
    end: int


def overlap_over_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection area over the smaller box's area, for xyxy boxes."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return w * h / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)


def _max_overlap(frames: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, dict[int, tuple]]:
    """Per row, its largest overlap with another box of its frame; and per frame with two or more
    boxes, (its rows, their overlap matrix)."""
    best = np.zeros(len(frames))
    order = np.argsort(frames, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(frames[order]) != 0, True])
    pairs: dict = {}
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi - lo < 2:
            continue
        rows = order[lo:hi]
        o = overlap_over_smaller(boxes[rows], boxes[rows])
        np.fill_diagonal(o, 0)
        best[rows] = o.max(axis=1)
        pairs[int(frames[rows[0]])] = (rows, o)
    return best, pairs


def find_crossings(track_ids: np.ndarray, frames: np.ndarray, boxes: np.ndarray,
                   config: CrossingConfig = CrossingConfig()) -> list[Crossing]:
    """One camera's crossing events, in order of start (module docstring, step 1)."""
    track_ids, frames, boxes = np.asarray(track_ids), np.asarray(frames, np.int64), np.asarray(boxes, np.float64)
    _, by_frame = _max_overlap(frames, boxes)
    runs: dict[tuple, list[list[int]]] = {}  # pair -> [[first, last], ...]
    for frame in sorted(by_frame):
        rows, o = by_frame[frame]
        for i, j in zip(*np.nonzero(np.triu(o >= config.min_overlap, 1))):
            a, b = track_ids[rows[i]], track_ids[rows[j]]
            if a == b:
                continue
            pair = (a, b) if str(a) < str(b) else (b, a)
            spans = runs.setdefault(pair, [])
            if spans and frame - spans[-1][1] <= config.join_gap_frames:
                spans[-1][1] = frame
            else:
                spans.append([frame, frame])
    events = [(set(pair), first, last) for pair, spans in runs.items() for first, last in spans
              if last - first + 1 >= config.min_frames]
    if config.lost_overlap is not None:
        events += _lost_events(track_ids, frames, boxes, config)
    return [Crossing(tuple(sorted(tracks, key=str)), first, last) for tracks, first, last in _merge(events, config)
            if last - first + 1 <= config.max_frames]


def _merge(events: list[tuple[set, int, int]], config: CrossingConfig) -> list[tuple[set, int, int]]:
    """Events sharing a track at overlapping times (within ``join_gap_frames``) become one, up to
    ``max_frames`` long: beyond, people walking in a group would chain into one event that says
    nothing, so its parts are decided one after the other."""
    merged = sorted(events, key=lambda e: e[1])
    changed = True
    while changed:
        changed = False
        out: list[tuple[set, int, int]] = []
        for tracks, first, last in merged:
            for k, (other, lo, hi) in enumerate(out):
                if (tracks & other and first <= hi + config.join_gap_frames and lo <= last + config.join_gap_frames
                        and max(hi, last) - min(lo, first) < config.max_frames):
                    out[k] = (other | tracks, min(lo, first), max(hi, last))
                    changed = True
                    break
            else:
                out.append((tracks, first, last))
        merged = sorted(out, key=lambda e: e[1])
    return merged


def _lost_events(track_ids: np.ndarray, frames: np.ndarray, boxes: np.ndarray,
                 config: CrossingConfig) -> list[tuple[set, int, int]]:
    """Occlusions: a track lost where, by at least ``lost_overlap`` of its last box, another
    track's box covers it on the next frame, or a new track starts on it within ``max_frames``
    (before the lost track is taken up again). A track never taken up again needs both (else it
    left the view, and a newcomer there is someone else). The event runs from the loss to the
    re-acquisition or the newcomers' start, whichever is later."""
    order = np.lexsort((frames, track_ids.astype(str)))
    at_frame = {int(f): np.flatnonzero(frames == f) for f in np.unique(frames)}
    first_row = {}
    for row in order:
        first_row.setdefault(track_ids[row], row)
    events = []
    for k, row in enumerate(order):
        track = track_ids[row]
        nxt = order[k + 1] if k + 1 < len(order) and track_ids[order[k + 1]] == track else None
        if nxt is not None and frames[nxt] == frames[row] + 1:
            continue
        lost = int(frames[row]) + 1
        back = int(frames[nxt]) if nxt is not None and frames[nxt] - lost <= config.max_frames else None
        others = [r for r in at_frame.get(lost, ()) if track_ids[r] != track]
        covering = set()
        if others:
            cover = overlap_over_smaller(boxes[[row]], boxes[others])[0]
            covering = {track_ids[others[i]] for i in np.flatnonzero(cover >= config.lost_overlap)}
        until = lost + config.max_frames if back is None else back
        newcomers = {t: r for t, r in first_row.items() if t != track and lost <= frames[r] < until
                     and overlap_over_smaller(boxes[[row]], boxes[[r]])[0, 0] >= config.lost_overlap}
        if not newcomers and (back is None or not covering) or back is None and not covering:
            continue  # nothing took its place, or it left (no box covered it: out of view, say)
        end = max([lost - 1] + ([back - 1] if back is not None else [])
                  + [int(frames[r]) - 1 for r in newcomers.values()])
        events.append(({track} | covering | set(newcomers), lost, end))
    return events


def _fit(t: np.ndarray, xy: np.ndarray, config: CrossingConfig) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(time, position, velocity) of a line fitted to the samples, at the sample nearest the
    crossing (the last of ``t`` when it is before, else the first); None without samples."""
    ok = np.isfinite(xy).all(axis=1)
    t, xy = t[ok], xy[ok]
    if not len(t):
        return None
    if len(t) < 3:
        return float(t[0]), xy.mean(axis=0), np.zeros(2)
    design = np.column_stack([np.ones_like(t), t - t[0]])
    (pos, vel), *_ = np.linalg.lstsq(design, xy, rcond=None)
    speed = float(np.hypot(*vel))
    if speed > config.max_speed_mps:
        vel = vel * (config.max_speed_mps / speed)
    return float(t[0]), pos, vel


@dataclass(frozen=True)
class _Side:
    """One piece's end at the crossing: motion in map and pixel-metre space, and clear crops."""

    track: object
    map_fit: tuple | None
    px_fit: tuple | None
    crops: np.ndarray  # row indices


def _side(track, rows: np.ndarray, before: bool, table: dict, clear: np.ndarray,
          config: CrossingConfig) -> _Side | None:
    """The entering (``before``) or leaving piece's end from ``rows`` (one track's rows in frame order)."""
    if not len(rows):
        return None
    near = rows[-config.context_frames:] if before else rows[:config.context_frames]
    near = near[::-1] if before else near  # nearest to the crossing first
    ts = table["ts"][near]
    scale = config.person_height_m / max(float(np.median(table["height"][near])), 1e-9)
    map_fit, px_fit = _fit(ts, table["map"][near], config), _fit(ts, table["foot"][near] * scale, config)
    clear_rows = rows[clear[rows]]
    clear_rows = clear_rows[-2 * config.context_frames:] if before else clear_rows[:2 * config.context_frames]
    quality = table["quality"][clear_rows]
    crops = clear_rows[np.argsort(-quality, kind="stable")[:config.crops]]
    return _Side(track, map_fit, px_fit, crops)


def _motion_score(a: _Side, b: _Side, config: CrossingConfig) -> float:
    """1 - mean miss of the constant-velocity predictions through the crossing / tolerance."""
    fa, fb = (a.map_fit, b.map_fit) if a.map_fit is not None and b.map_fit is not None else (a.px_fit, b.px_fit)
    if fa is None or fb is None:
        return 0.0
    gap = max(fb[0] - fa[0], 0.0)
    forward = math.dist(fa[1] + fa[2] * gap, fb[1])
    backward = math.dist(fb[1] - fb[2] * gap, fa[1])
    return 1.0 - 0.5 * (forward + backward) / (config.position_slack_m + config.speed_uncertainty_mps * gap)


def resolve_crossings(tracks: pd.DataFrame, config: CrossingConfig = CrossingConfig(), embed: Embed | None = None,
                      id_column: str = "track_id", frame_column: str = "frame_index",
                      frame_rate: float = 7.0) -> tuple[np.ndarray, pd.DataFrame]:
    """(corrected track id per row of ``tracks``, one decision row per crossing).

    ``tracks``: one camera's boxes, ``id_column``, ``frame_column`` (processed frames),
    ``x1..y2``, optionally ``conf``, ``ts`` (else ``frame / frame_rate``), ``map_x, map_y``.
    A leaving piece assigned to another entering piece takes that track's id; a leaving piece left
    unmatched gets a new integer id above the table's largest (ids must then be integers).
    """
    ids = tracks[id_column].to_numpy()
    frames = tracks[frame_column].to_numpy(np.int64)
    boxes = tracks[BOX].to_numpy(np.float64)
    decisions = pd.DataFrame(columns=DECISION_COLUMNS)
    if not len(tracks):
        return ids.copy(), decisions
    crossings = find_crossings(ids, frames, boxes, config)
    if not crossings:
        return ids.copy(), decisions
    height = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-9)
    conf = tracks["conf"].to_numpy(np.float64) if "conf" in tracks else np.ones(len(tracks))
    table = {
        "ts": tracks["ts"].to_numpy(np.float64) if "ts" in tracks else frames / frame_rate,
        "map": (tracks[["map_x", "map_y"]].to_numpy(np.float64) if {"map_x", "map_y"} <= set(tracks)
                else np.full((len(tracks), 2), np.nan)),
        "foot": np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]]),
        "height": height,
        "quality": conf * height,
    }
    best, _ = _max_overlap(frames, boxes)
    clear = best <= config.clear_overlap
    order = np.lexsort((frames, ids.astype(str)))
    rows_of = {track: order[ids[order] == track] for track in {t for c in crossings for t in c.tracks}}

    sides = []  # per crossing: (entering sides, leaving sides)
    for c in crossings:
        entering = [s for t in c.tracks if (s := _side(t, rows_of[t][frames[rows_of[t]] < c.start], True, table,
                                                        clear, config)) is not None]
        leaving = [s for t in c.tracks if (s := _side(t, rows_of[t][frames[rows_of[t]] > c.end], False, table,
                                                       clear, config)) is not None]
        sides.append((entering, leaving))
    vectors = _embed_sides(sides, tracks, frames, embed) if embed is not None else {}

    successor: dict[tuple, object] = {}  # (crossing k, entering track) -> leaving track
    records = []
    for k, (c, (entering, leaving)) in enumerate(zip(crossings, sides)):
        score = np.array([[_pair_score(k, a, b, vectors, config) for b in leaving] for a in entering]).reshape(
            len(entering), len(leaving))
        tracker = sum(score[i, j] for i, a in enumerate(entering) for j, b in enumerate(leaving) if a.track == b.track)
        rows, cols = linear_sum_assignment(score, maximize=True)
        keep = score[rows, cols] >= config.min_score
        rows, cols = rows[keep], cols[keep]
        assigned = float(score[rows, cols].sum())
        swapped = assigned >= tracker + config.margin and any(entering[i].track != leaving[j].track
                                                               for i, j in zip(rows, cols))
        if swapped:
            for i, j in zip(rows, cols):
                successor[(k, entering[i].track)] = leaving[j].track
            for a in entering:
                successor.setdefault((k, a.track), None)
        records.append(dict(start_frame=c.start, end_frame=c.end, tracks=list(c.tracks),
                            entering=[s.track for s in entering], leaving=[s.track for s in leaving],
                            tracker_score=float(tracker), assigned_score=assigned, swapped=bool(swapped)))
    decisions = pd.DataFrame(records, columns=DECISION_COLUMNS)
    return _relabel(ids, frames, crossings, successor, rows_of), decisions


def _pair_score(k: int, a: _Side, b: _Side, vectors: dict, config: CrossingConfig) -> float:
    score = config.motion_weight * _motion_score(a, b, config)
    va, vb = vectors.get((k, a.track, "in")), vectors.get((k, b.track, "out"))
    if va is not None and vb is not None:
        score += config.appearance_weight * (float(va @ vb) - config.appearance_neutral)
    return score


def _embed_sides(sides: list, tracks: pd.DataFrame, frames: np.ndarray, embed: Embed) -> dict:
    """(crossing, track, "in"/"out") -> unit mean embedding of that piece's clear crops."""
    keys, chosen = {}, []
    for k, (entering, leaving) in enumerate(sides):
        for side, where in [(s, "in") for s in entering] + [(s, "out") for s in leaving]:
            if len(side.crops):
                name = f"{k}/{where}/{side.track}"
                keys[name] = (k, side.track, where)
                chosen.append(pd.DataFrame({"tracklet_id": name, "row": side.crops}))
    if not chosen:
        return {}
    picks = pd.concat(chosen, ignore_index=True)
    source = tracks.iloc[picks["row"].to_numpy()]
    crops = pd.DataFrame({
        "tracklet_id": picks["tracklet_id"].to_numpy(), "frame_index": frames[picks["row"].to_numpy()],
        "camera": source["camera"].to_numpy() if "camera" in source else "camera",
        **{c: source[c].to_numpy(np.float64) for c in BOX},
        "conf": source["conf"].to_numpy(np.float64) if "conf" in source else 1.0})
    return {keys[name]: np.asarray(vector, np.float64) for name, vector in embed(crops).items()}


def _relabel(ids: np.ndarray, frames: np.ndarray, crossings: list[Crossing], successor: dict,
             rows_of: dict) -> np.ndarray:
    """Follow each track's pieces through the crossings, in time order: after a re-decided
    crossing, a leaving piece carries the id of the entering piece assigned to it (or a new id)."""
    out = ids.copy()
    if not successor:
        return out
    next_id = int(np.max(ids.astype(np.int64))) + 1
    label = {t: t for t in rows_of}  # the id each track's current piece carries
    for k in sorted({k for k, _ in successor}):  # one track's crossings are disjoint: start order is time order
        c = crossings[k]
        taken = {b: label[a] for (kk, a), b in successor.items() if kk == k and b is not None}
        for t in c.tracks:
            after = rows_of[t][frames[rows_of[t]] > c.end]
            if not len(after):
                continue
            if t in taken:
                label[t] = taken[t]
            else:  # a leaving piece no entering piece continues: a new track
                label[t], next_id = next_id, next_id + 1
            out[after] = label[t]
    return out
