"""Cross-camera, cross-segment global identities, solved offline per environment.

Every tracklet (a piece of one tracker id of one camera in one segment: the pipeline cuts tracks
at re-acquisitions and every 2 s, :func:`spoton.identity.postprocess.tracklet_pieces`) is a node. Geometry
decides what is possible; appearance (weak on its own: same person cosine ~0.85, different ~0.73)
only tips the balance between candidates that geometry allows.

1. Cannot-link (hard). Two tracklets are different people when
   - they come from the same camera and segment and share an instant (a tracker never gives one
     person two ids at once), or
   - they are seen at the same instants (|dt| <= ``frame_tolerance_s``) at map positions whose
     median distance exceeds ``cannot_link_m`` (nobody is in two places at once).
2. Co-visibility link (strong). Seen together on at least ``min_common_frames`` instants with a
   median map distance below ``covisible_max_m``: one person in two cameras' overlap.
   Geometry score = 1 - median distance / ``covisible_max_m``.
3. Continuation link. B starts at most ``max_gap_s`` after A ends (occlusion, segment boundary,
   hand-over between cameras), overlapping by fewer than ``min_common_frames`` instants, and B's
   first position is reachable from A's last one at ``max_speed_mps`` plus
   ``position_slack_m``. Both ends are line fits over ``end_window_s`` (position and velocity);
   the error ``e`` is the mean of the constant-velocity predictions' misses, A forward to B's start
   and B backward to A's end. Geometry score = max(0, 1 - e / tolerance), where the tolerance is
   ``position_slack_m`` plus ``speed_uncertainty_mps`` per second of gap. Without map positions a
   same-camera pair falls back to pixel foot points scaled to metres by box height (a person is
   about ``person_height_m`` tall). Where A's last box and B's first box of one camera touch the
   frame's border (within ``view_edge_margin`` of the frame, from the normalised ``bbox_*``
   columns when the boxes have them) and more than ``view_edge_min_gap_s`` lies between them, A
   left the camera's view and B came in: nothing was seen in between, so the motion prediction
   is no evidence and the geometry score is 0 (appearance, or another camera, must carry the
   join).
4. Score = kind weight (``covisible_weight`` or ``continuation_weight``) x geometry score
   + ``appearance_weight`` x (cosine - ``appearance_neutral``), the appearance term being 0 where
   an embedding is missing. Given the environment's adapted embeddings
   (:mod:`spoton.identity.adaptation`), ``adapted_weight`` x (adapted cosine - ``adapted_neutral``)
   is added to continuation links (co-visibility links only with ``adapted_on_covisible``: there
   the geometry already decides, and the head is over-confident for people walking side by side),
   and a candidate whose adapted cosine is below ``adapted_veto`` becomes a cannot-link (all off
   by default: docs/benchmarks.md has what they measured).
5. Clustering (``clustering``):
   - ``greedy``: links scoring at least ``min_score`` are merged by descending score with a
     union-find. A merge is refused when any cannot-link pair would end up in one cluster: the
     constraints are carried between clusters, not only checked on the pair at hand. Then, unless
     ``repair_min_gain`` is None, local moves mend what an early join blocked: two identities kept
     apart by the cannot-links of a few tracklets (a stray piece of a track that drifted, a
     duplicate box at a hand-over) are joined without them where that raises the summed
     ``score - min_score`` inside identities by at least ``repair_min_gain`` (on the sample's worst
     cell, a person's two halves were kept apart by 4 cannot-links refusing 51 links).
   - ``optimal``: the whole graph as one correlation clustering (:mod:`spoton.identity.correlation_clustering`,
     a MILP solved by HiGHS): maximise the summed ``score - min_score`` of the links kept inside
     identities, cannot-links hard. An early strong join can no longer block two better ones.
     Beyond ``solver_limits`` (size, time) the greedy answer is used (``diagnostics["optimal"]`` 0).
   ``must_link`` pairs (tracklets known to be one person) are kept by both; against a cannot-link
   the must-link wins and the greedy answer is used. The pipeline passes none: an analyst's merge
   in ``identity_overrides`` names two identities as the reviewer saw them, and as must-links of
   two of their tracklets it re-shaped the rest of those identities (the review round-trip test),
   so corrections are applied after the resolver (:mod:`spoton.identity.overrides`). Tracklets that no
   link reaches (very short ones, say) keep an identity of their own.

Global ids are dense from 1, ordered by each identity's first appearance. ``IdentityResult.links``
lists every pair with its evidence and decision, so each join or split can be explained.

Limits, by design: appearance never links without geometry allowing it (co-visible, or B reachable
from A within ``max_gap_s``), so someone unseen for longer than ``max_gap_s`` (left and came back)
gets a new id (:mod:`spoton.identity.reentry` can join such identities afterwards; off by default).
Within what geometry allows, a strong appearance match can carry a continuation
whose motion prediction is poor (geometry score 0): on the PETS development split that recovers
more people who turned during an occlusion than it merges wrongly (gating those links cost 4 points
of cross-camera IDF1). One person leaving through a door just as another enters there is told
apart by appearance alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from spoton.identity.correlation_clustering import ConflictingLinks, SolverLimits, correlation_clustering

CLUSTERINGS = ("greedy", "optimal")
LINK_COLUMNS = ["tracklet_a", "tracklet_b", "kind", "score", "distance_m", "prediction_error_m",
                "gap_s", "n_common", "cosine", "decision"]


@dataclass(frozen=True)
class IdentityConfig:
    """Thresholds and weights of the association (see the module docstring for each role).

    Defaults were tuned on synthetic 7 fps scenes (tests/spoton/identity/test_identity.py): walkers at
    1.3 m/s, 0.2 m map jitter per camera, occlusions up to 2.5 s. ``max_gap_s`` is 4 s because an
    occlusion next to a coverage edge leaves gaps a little over 3 s; ``speed_uncertainty_mps`` lets
    a walker turn during a gap; ``appearance_neutral`` sits between the MobileNetV2 same-person
    (~0.85) and different-person (~0.73) cosines, so +-0.06 cosine moves a score by +-0.5.
    ``covisible_max_m``, ``appearance_weight`` and ``continuation_weight`` were then raised on the
    PETS development split (frames 0..399, cross-camera IDF1 65 -> 77; docs/benchmarks.md): real
    detections jitter more than the synthetic 0.2 m, and appearance is worth more than assumed.
    Once the pipeline cut tracks into 2 s tracklets (``spoton.identity.postprocess.tracklet_pieces``),
    ``appearance_weight`` 12 and ``max_gap_s`` 5 did best on both builds of the sample environment.
    The view-border rule (``view_edge_margin`` ~8 px of a 768 px frame, ``view_edge_min_gap_s``)
    stopped one camera's stitching from joining a person who left at the border to another who
    came in there 2.2 s later (single-camera IDF1 +1.0 to +1.8 at every score threshold tried);
    on both builds of the sample environment every tracklet keeps its global id (appearance and
    the other cameras decide those people there). The repair of blocked merges
    (``repair_min_gain`` 1, the objective's gain a move must bring) raised the worst cell of the
    sample's score-threshold grid from 83.1 to 88.6 cross-camera IDF1 and lost nothing in any cell.
    Once foot points followed the person's axis, a hand-over's two or three shared instants between
    a border-cut box and another camera's could sit 2.0-2.5 m apart and their cannot-link split one
    person in the worst cell (83.8); ``cannot_link_m`` 2.5 (2.25 gives the same grid, 3 within 0.1) gives 88.9
    there and moves no other cell's cross-camera IDF1 or identity count (map p90 +0.003 m at most).
    """

    frame_tolerance_s: float = 0.5 / 7
    min_common_frames: int = 3
    covisible_max_m: float = 1.5
    cannot_link_m: float = 2.5
    max_gap_s: float = 5.0
    max_speed_mps: float = 2.5
    position_slack_m: float = 1.0
    speed_uncertainty_mps: float = 1.5
    end_window_s: float = 1.5
    appearance_neutral: float = 0.79
    appearance_weight: float = 12.0
    covisible_weight: float = 2.0
    continuation_weight: float = 1.5
    min_score: float = 0.3
    person_height_m: float = 1.7
    view_edge_margin: float = 0.01
    view_edge_min_gap_s: float = 1.0
    # adapted appearance (spoton.identity.adaptation), used only when the resolver is given it: a
    # continuation link (and a co-visibility link too when adapted_on_covisible) gains
    # adapted_weight x (adapted cosine - adapted_neutral), and a candidate becomes a cannot-link
    # where the adapted cosine is below adapted_veto (None: no veto)
    adapted_weight: float = 0.0
    adapted_neutral: float = 0.5
    adapted_veto: float | None = None
    adapted_on_covisible: bool = False
    clustering: str = "greedy"
    solver_limits: SolverLimits = field(default_factory=SolverLimits)
    # greedy only: after the merges, two identities that a few tracklets' cannot-links keep apart are
    # joined without those tracklets where that raises the summed (score - min_score) inside
    # identities by at least repair_min_gain (None: off; see _repair_blocked)
    repair_min_gain: float | None = 1.0

    def __post_init__(self):
        if self.clustering not in CLUSTERINGS:
            raise ValueError(f"clustering {self.clustering!r} is not one of {CLUSTERINGS}")
        if self.repair_min_gain is not None and not self.repair_min_gain > 0:
            raise ValueError(f"repair_min_gain {self.repair_min_gain}: use a positive gain, or None for no repair")


@dataclass(frozen=True)
class IdentityResult:
    """``assignments``: tracklet_id -> global_id; ``links``: every candidate and cannot-link pair
    with its evidence and decision, so a reviewer can see why two tracklets were (not) joined."""

    assignments: pd.DataFrame
    links: pd.DataFrame
    diagnostics: dict[str, int]


@dataclass(frozen=True)
class _End:
    """Position and velocity fitted at one end of a tracklet."""

    t: float
    pos: np.ndarray
    vel: np.ndarray


@dataclass(frozen=True)
class _Tracklet:
    id: str
    camera: str
    segment: str
    ts: np.ndarray
    map_xy: np.ndarray
    head: _End | None  # map space
    tail: _End | None
    px_head: _End | None  # pixel foot points scaled to approximate metres
    px_tail: _End | None
    enters_at_edge: bool  # first / last box touches the frame's border
    leaves_at_edge: bool

    @property
    def start(self) -> float:
        return float(self.ts[0])

    @property
    def end(self) -> float:
        return float(self.ts[-1])


def _fit_end(ts: np.ndarray, xy: np.ndarray, at_end: bool, config: IdentityConfig) -> _End | None:
    """Least-squares line over the last (or first) ``end_window_s``: less noisy than one sample."""
    ok = np.isfinite(xy).all(axis=1)
    if not ok.any():
        return None
    t, p = ts[ok], xy[ok]
    t0 = t[-1] if at_end else t[0]
    near = np.abs(t - t0) <= config.end_window_s
    t, p = t[near] - t0, p[near]
    if len(t) < 3:
        return _End(float(t0), p.mean(axis=0), np.zeros(2))
    design = np.column_stack([np.ones_like(t), t])
    (pos, vel), *_ = np.linalg.lstsq(design, p, rcond=None)
    speed = float(np.hypot(*vel))
    if speed > config.max_speed_mps:
        vel = vel * (config.max_speed_mps / speed)
    return _End(float(t0), pos, vel)


def _tracklets(boxes: pd.DataFrame, config: IdentityConfig) -> list[_Tracklet]:
    frame = boxes.sort_values(["tracklet_id", "ts"], kind="mergesort")
    ids, first = np.unique(frame["tracklet_id"].to_numpy(str), return_index=True)
    bounds = np.append(first, len(frame))
    ts = frame["ts"].to_numpy(np.float64)
    map_xy = frame[["map_x", "map_y"]].to_numpy(np.float64)
    x1, y1, x2, y2 = (frame[c].to_numpy(np.float64) for c in ("x1", "y1", "x2", "y2"))
    foot = np.column_stack([(x1 + x2) / 2, y2])
    height = y2 - y1
    cameras, segments = frame["camera"].to_numpy(str), frame["segment"].to_numpy(str)
    at_edge = _touches_border(frame, config.view_edge_margin)
    out = []
    for k, tid in enumerate(ids):
        s = slice(bounds[k], bounds[k + 1])
        h = np.nanmedian(height[s])
        px = foot[s] * (config.person_height_m / h) if h > 0 else np.full((s.stop - s.start, 2), np.nan)
        out.append(_Tracklet(
            str(tid), str(cameras[s.start]), str(segments[s.start]), ts[s], map_xy[s],
            _fit_end(ts[s], map_xy[s], False, config), _fit_end(ts[s], map_xy[s], True, config),
            _fit_end(ts[s], px, False, config), _fit_end(ts[s], px, True, config),
            bool(at_edge[s.start]), bool(at_edge[s.stop - 1])))
    return out


def _touches_border(boxes: pd.DataFrame, margin: float) -> np.ndarray:
    """Per row: the box is within ``margin`` (a fraction of the frame) of any border; all False
    when the boxes carry no normalised ``bbox_x, bbox_y, bbox_w, bbox_h``."""
    if not {"bbox_x", "bbox_y", "bbox_w", "bbox_h"} <= set(boxes.columns):
        return np.zeros(len(boxes), bool)
    x, y, w, h = (boxes[c].to_numpy(np.float64) for c in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
    return (x <= margin) | (y <= margin) | (x + w >= 1 - margin) | (y + h >= 1 - margin)


def _embedding_matrix(tracklets: list[_Tracklet], embeddings: pd.DataFrame) -> np.ndarray:
    """(N, D) unit rows in tracklet order; NaN rows where a tracklet has no embedding."""
    by_id = dict(zip(embeddings["tracklet_id"].astype(str), embeddings["embedding"]))
    dim = len(next(iter(by_id.values()))) if by_id else 1
    matrix = np.full((len(tracklets), dim), np.nan)
    for k, t in enumerate(tracklets):
        if t.id in by_id:
            vector = np.asarray(by_id[t.id], dtype=np.float64)
            matrix[k] = vector / max(np.linalg.norm(vector), 1e-12)
    return matrix


_NO_MATCHES = np.zeros(0, dtype=np.int64)


def _match_times(ta: np.ndarray, tb: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (ia, ib) of simultaneous samples: each of ``ta`` to its nearest in ``tb``.

    Both are sorted; time ranges further apart than ``tol`` (most candidate pairs) return at once.
    """
    if tb[0] - ta[-1] > tol or ta[0] - tb[-1] > tol:
        return _NO_MATCHES, _NO_MATCHES
    j = np.searchsorted(tb, ta)
    lo, hi = np.clip(j - 1, 0, len(tb) - 1), np.clip(j, 0, len(tb) - 1)
    pick = np.where(np.abs(tb[lo] - ta) <= np.abs(tb[hi] - ta), lo, hi)
    ok = np.abs(tb[pick] - ta) <= tol
    return np.flatnonzero(ok), pick[ok]


def _continuation(a: _Tracklet, b: _Tracklet,
                  config: IdentityConfig) -> tuple[float, float, float] | None:
    """(geometry score, end-to-start distance, prediction error) for B continuing A, or None if B
    is unreachable."""
    tail, head = a.tail, b.head
    if (tail is None or head is None) and a.camera == b.camera:
        tail, head = a.px_tail, b.px_head
    if tail is None or head is None:
        return None
    gap = max(head.t - tail.t, 0.0)
    distance = math.dist(head.pos, tail.pos)  # 2-vectors: math is ~10x cheaper than np.linalg here
    if distance > config.max_speed_mps * gap + config.position_slack_m:
        return None
    forward = math.dist(tail.pos + tail.vel * gap, head.pos)
    backward = math.dist(head.pos - head.vel * gap, tail.pos)
    error = 0.5 * float(forward + backward)
    tolerance = config.position_slack_m + config.speed_uncertainty_mps * gap
    out_of_view = (a.camera == b.camera and a.leaves_at_edge and b.enters_at_edge
                   and gap > config.view_edge_min_gap_s)
    return (0.0 if out_of_view else max(0.0, 1.0 - error / tolerance)), distance, error


def _evidence(tracklets: list[_Tracklet], emb: np.ndarray, config: IdentityConfig,
              adapted: np.ndarray | None = None) -> pd.DataFrame:
    """Every pair close enough in time to say something: cannot-links and scored candidates."""
    order = np.argsort([t.start for t in tracklets], kind="stable")
    starts = np.array([tracklets[k].start for k in order])
    rows = []
    for pos, i in enumerate(order):
        a = tracklets[i]
        stop = np.searchsorted(starts, a.end + config.max_gap_s, side="right")
        for j in order[pos + 1:stop]:
            b = tracklets[j]  # b.start >= a.start
            ia, ib = _match_times(a.ts, b.ts, config.frame_tolerance_s)
            cosine = float(emb[i] @ emb[j])
            appearance = 0.0 if np.isnan(cosine) else config.appearance_weight * (
                cosine - config.appearance_neutral)
            adapted_cosine = float(adapted[i] @ adapted[j]) if adapted is not None else np.nan
            adapted_term = (0.0 if np.isnan(adapted_cosine) else
                            config.adapted_weight * (adapted_cosine - config.adapted_neutral))
            base = dict(tracklet_a=a.id, tracklet_b=b.id, cosine=cosine, gap_s=b.start - a.end)
            vetoed = config.adapted_veto is not None and adapted_cosine < config.adapted_veto
            if len(ia) and a.camera == b.camera and a.segment == b.segment:
                rows.append(dict(base, kind="cannot_link", n_common=len(ia), score=np.nan,
                                 distance_m=np.nan))
                continue
            d = np.linalg.norm(a.map_xy[ia] - b.map_xy[ib], axis=1)
            d = d[np.isfinite(d)]
            median = float(np.median(d)) if len(d) else np.nan
            if len(d) and median > config.cannot_link_m:
                rows.append(dict(base, kind="cannot_link", n_common=len(d), score=np.nan,
                                 distance_m=median))
            elif vetoed:  # what geometry allows, the adapted appearance refuses
                rows.append(dict(base, kind="cannot_link", n_common=len(d), score=np.nan,
                                 distance_m=median if len(d) else np.nan))
            elif len(d) >= config.min_common_frames and median < config.covisible_max_m:
                geometry = 1.0 - median / config.covisible_max_m
                rows.append(dict(base, kind="covisible", n_common=len(d), distance_m=median,
                                 score=config.covisible_weight * geometry + appearance
                                 + (adapted_term if config.adapted_on_covisible else 0.0)))
            elif len(ia) < config.min_common_frames and b.end > a.end:
                found = _continuation(a, b, config)
                if found is not None:
                    geometry, distance, error = found
                    rows.append(dict(base, kind="continuation", n_common=len(ia), distance_m=distance,
                                     prediction_error_m=error,
                                     score=config.continuation_weight * geometry + appearance + adapted_term))
    return pd.DataFrame(rows, columns=LINK_COLUMNS[:-1])


def _cluster(links: pd.DataFrame, index: dict[str, int], must: np.ndarray,
             config: IdentityConfig) -> tuple[np.ndarray, list[str], bool]:
    """Each tracklet's root, each link's decision, and whether the optimal clustering decided."""
    a_idx = links["tracklet_a"].map(index).to_numpy()
    b_idx = links["tracklet_b"].map(index).to_numpy()
    kinds, scores = links["kind"].to_numpy(), links["score"].to_numpy()
    if config.clustering == "optimal":
        candidate = kinds != "cannot_link"
        edges = np.column_stack([a_idx, b_idx])
        try:
            labels = correlation_clustering(len(index), edges[candidate], scores[candidate] - config.min_score,
                                            edges[~candidate], must, config.solver_limits)
        except ConflictingLinks:  # an analyst joined what geometry forbids: greedy lets the analyst win
            labels = None
        if labels is not None:
            decisions = ["constraint" if kind == "cannot_link" else
                         ("merged" if labels[a] == labels[b] else
                          "separated" if score >= config.min_score else "below_min_score")
                         for kind, score, a, b in zip(kinds, scores, a_idx, b_idx)]
            return labels, decisions, True
    roots, decisions = _cluster_greedy(a_idx, b_idx, kinds, scores, len(index), must, config)
    if config.repair_min_gain is not None:
        roots, decisions = _repair_blocked(a_idx, b_idx, kinds, scores, roots, decisions, must, config)
    return roots, decisions, False


def _cluster_greedy(a_idx: np.ndarray, b_idx: np.ndarray, kinds: np.ndarray, scores: np.ndarray, n: int,
                    must: np.ndarray, config: IdentityConfig) -> tuple[np.ndarray, list[str]]:
    """Greedy constrained union-find over links sorted by descending score (must-links first)."""
    parent = np.arange(n)

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    cannot: dict[int, set[int]] = {k: set() for k in range(n)}

    def join(ra: int, rb: int) -> None:
        cannot[ra].discard(rb)  # a must-link wins over a cannot-link between the two
        cannot[rb].discard(ra)
        parent[rb] = ra
        cannot[ra] |= cannot.pop(rb)
        for other in cannot[ra]:
            cannot[other].discard(rb)
            cannot[other].add(ra)

    decisions = ["below_min_score"] * len(kinds)
    for row in np.flatnonzero(kinds == "cannot_link"):
        cannot[a_idx[row]].add(b_idx[row])
        cannot[b_idx[row]].add(a_idx[row])
        decisions[row] = "constraint"
    for a, b in must:
        ra, rb = sorted((find(a), find(b)))
        if ra != rb:
            join(ra, rb)
    for row in range(len(kinds)):  # rows arrive sorted by descending score
        if kinds[row] == "cannot_link" or not scores[row] >= config.min_score:
            continue
        ra, rb = sorted((find(a_idx[row]), find(b_idx[row])))
        if ra == rb:
            decisions[row] = "same_cluster"
        elif rb in cannot[ra]:
            decisions[row] = "refused_cannot_link"
        else:
            join(ra, rb)
            decisions[row] = "merged"
    return np.array([find(k) for k in range(n)]), decisions


def _repair_blocked(a_idx: np.ndarray, b_idx: np.ndarray, kinds: np.ndarray, scores: np.ndarray,
                    roots: np.ndarray, decisions: list[str], must: np.ndarray,
                    config: IdentityConfig) -> tuple[np.ndarray, list[str]]:
    """Local moves on greedy's answer, each raising the correlation-clustering objective (the summed
    ``score - min_score`` of the links inside identities) by at least ``repair_min_gain``.

    Greedy lets a tracklet joined early (a stray piece of a tracker track that drifted, a duplicate
    box at a hand-over) carry cannot-links that refuse every later link between two halves of one
    person. A move takes two identities with such refused links and tracklets that cover the
    cannot-links between them (greedily, the cheapest per conflict covered, cost being what a
    tracklet's links inside its identity are worth; must-linked tracklets are never taken), and
    joins the rest. The taken
    tracklets become identities of their own, and join another identity later where that gains and
    nothing forbids it. Moves repeat, best first, until none gains.
    """
    n = len(roots)
    labels = np.asarray(roots).copy()
    weight = np.asarray(scores, np.float64) - config.min_score  # object dtype when there are no links
    candidate = (kinds != "cannot_link") & np.isfinite(weight)
    links: list[dict[int, float]] = [dict() for _ in range(n)]
    for a, b, w in zip(a_idx[candidate], b_idx[candidate], weight[candidate]):
        links[a][b] = links[a].get(b, 0.0) + w
        links[b][a] = links[b].get(a, 0.0) + w
    cannot: list[set[int]] = [set() for _ in range(n)]
    for a, b in zip(a_idx[~candidate & (kinds == "cannot_link")], b_idx[~candidate & (kinds == "cannot_link")]):
        cannot[a].add(b)
        cannot[b].add(a)
    pinned = set(must.reshape(-1).tolist())
    members: dict[int, set[int]] = {}
    for k, label in enumerate(labels):
        members.setdefault(int(label), set()).add(k)
    next_label = n

    def inside(node: int, group: set[int]) -> float:
        return sum(w for other, w in links[node].items() if other in group)

    def cost_of(node: int, taken: set[int]) -> float:
        return math.inf if node in pinned else inside(node, members[int(labels[node])] - taken)

    def best_move() -> tuple[float, int, int, set[int]] | None:
        between: dict[tuple[int, int], float] = {}
        for a in range(n):
            for b, w in links[a].items():
                la, lb = int(labels[a]), int(labels[b])
                if a < b and la != lb:
                    key = (min(la, lb), max(la, lb))
                    between[key] = between.get(key, 0.0) + w
        best = None
        for (la, lb), total in sorted(between.items(), key=lambda item: (-item[1], item[0])):
            if total < config.repair_min_gain:
                break
            group_a, group_b = members[la], members[lb]
            conflicts = [(a, b) for a in group_a for b in cannot[a] if b in group_b]
            before = (sum(inside(k, group_a) for k in group_a) + sum(inside(k, group_b) for k in group_b)) / 2
            taken = _cheap_cover(conflicts, cost_of)
            if taken is None:
                continue
            joined = (group_a | group_b) - taken
            gain = sum(inside(k, joined) for k in joined) / 2 - before
            if gain >= config.repair_min_gain and (best is None or gain > best[0]):
                best = (gain, la, lb, taken)
        return best

    moved = False
    for _ in range(n):
        move = best_move()
        if move is None:
            break
        _, la, lb, taken = move
        joined = (members.pop(la) | members.pop(lb)) - taken
        labels[list(joined)] = la
        members[la] = joined
        for k in sorted(taken):
            labels[k] = next_label
            members[next_label] = {k}
            next_label += 1
        moved = True
    if not moved:
        return roots, decisions
    decisions = list(decisions)
    for row in np.flatnonzero(candidate):
        together = labels[a_idx[row]] == labels[b_idx[row]]
        if decisions[row] == "refused_cannot_link" and together:
            decisions[row] = "merged_by_repair"
        elif decisions[row] in ("merged", "same_cluster") and not together:
            decisions[row] = "undone_by_repair"
    return labels, decisions


def _cheap_cover(conflicts: list[tuple[int, int]], cost_of) -> set[int] | None:
    """Tracklets touching every conflict pair, picked greedily by cost per pair covered (None when
    only infinitely costly ones are left)."""
    taken: set[int] = set()
    while conflicts:
        degree: dict[int, int] = {}
        for a, b in conflicts:
            degree[a], degree[b] = degree.get(a, 0) + 1, degree.get(b, 0) + 1
        cost, pick = min((cost_of(k, taken) / degree[k], k) for k in degree)
        if math.isinf(cost):
            return None
        taken.add(pick)
        conflicts = [(a, b) for a, b in conflicts if pick not in (a, b)]
    return taken


@dataclass(frozen=True)
class Evidence:
    """What the resolver weighs before it clusters: the tracklets (in id order) and every link
    between them (sorted by descending score, then ids). Each link depends on its two tracklets
    only, so the evidence of a subset is this evidence :meth:`without` the others."""

    tracklets: list[_Tracklet]
    links: pd.DataFrame  # LINK_COLUMNS but "decision"

    def without(self, dropped: set[str]) -> Evidence:
        """The evidence :func:`gather_evidence` would find with the ``dropped`` tracklets' boxes left out."""
        gone = self.links["tracklet_a"].isin(dropped) | self.links["tracklet_b"].isin(dropped)
        return Evidence([t for t in self.tracklets if t.id not in dropped], self.links[~gone].reset_index(drop=True))


def gather_evidence(boxes: pd.DataFrame, embeddings: pd.DataFrame, config: IdentityConfig = IdentityConfig(),
                    adapted: pd.DataFrame | None = None) -> Evidence:
    """The tracklets of ``boxes`` and the links between them (see :func:`resolve_global_identities`)."""
    tracklets = _tracklets(boxes, config)
    emb = _embedding_matrix(tracklets, embeddings)
    links = _evidence(tracklets, emb, config,
                      _embedding_matrix(tracklets, adapted) if adapted is not None and len(adapted) else None)
    links = links.sort_values(["score", "tracklet_a", "tracklet_b"], ascending=[False, True, True],
                              na_position="last", kind="mergesort", ignore_index=True)
    return Evidence(tracklets, links)


def resolve_global_identities(boxes: pd.DataFrame, embeddings: pd.DataFrame,
                              config: IdentityConfig = IdentityConfig(),
                              must_link: Iterable[tuple[str, str]] = (),
                              adapted: pd.DataFrame | None = None) -> IdentityResult:
    """Assign one global id per person to every tracklet of an environment (all segments).
    ``must_link``: tracklet id pairs known to be one person (pairs naming an unknown tracklet are
    ignored: the override that made them may be older than the tracklets). ``adapted``: the
    tracklets' adapted embeddings (tracklet_id, embedding), extra evidence weighed by
    ``config.adapted_*``."""
    return resolve_evidence(gather_evidence(boxes, embeddings, config, adapted), config, must_link)


def resolve_evidence(evidence: Evidence, config: IdentityConfig = IdentityConfig(),
                     must_link: Iterable[tuple[str, str]] = ()) -> IdentityResult:
    """Cluster gathered evidence into global ids (``evidence`` is left as it was)."""
    tracklets, links = evidence.tracklets, evidence.links.copy()
    index = {t.id: k for k, t in enumerate(tracklets)}
    must = np.array([(index[a], index[b]) for a, b in must_link if a in index and b in index],
                    np.int64).reshape(-1, 2)
    roots, decisions, optimal = _cluster(links, index, must, config)
    links["decision"] = decisions

    first_seen = pd.DataFrame({"tracklet_id": pd.Series([t.id for t in tracklets], dtype=object),
                               "root": roots, "start": [t.start for t in tracklets]})
    order = first_seen.groupby("root").agg(start=("start", "min"), tid=("tracklet_id", "min"))
    order = order.sort_values(["start", "tid"], kind="mergesort")
    gid_of_root = pd.Series(np.arange(1, len(order) + 1), index=order.index)
    first_seen["global_id"] = first_seen["root"].map(gid_of_root).astype(np.int64)
    assignments = (first_seen.sort_values(["start", "tracklet_id"], kind="mergesort")
                   [["tracklet_id", "global_id"]].reset_index(drop=True))

    counts = pd.crosstab(links["kind"], links["decision"]) if len(links) else pd.DataFrame()
    diagnostics = {"tracklets": len(tracklets), "identities": len(order),
                   "cannot_links": int((links["kind"] == "cannot_link").sum()), "optimal": int(optimal)}
    for kind in ("covisible", "continuation"):
        for decision in ("merged", "same_cluster", "refused_cannot_link", "separated", "below_min_score",
                         "merged_by_repair", "undone_by_repair"):
            value = counts.at[kind, decision] if kind in counts.index and decision in counts else 0
            diagnostics[f"{kind}_{decision}"] = int(value)
    return IdentityResult(assignments, links, diagnostics)
