"""Re-entry: one person's identities joined across gaps longer than the resolver bridges.

The resolver (:mod:`spoton.identity.resolver`) joins tracklets only where geometry allows it (co-visible,
or B reachable from A within ``max_gap_s``), so someone who leaves every camera's view and comes
back later gets a new identity. This stage works on whole identities, after the resolver: B may
be A coming back when

- they are never seen at the same time (B starts after A ends: nobody is in two places at once,
  and co-visible identities are the resolver's to join),
- the gap is at most ``max_gap_s`` and longer than ``min_gap_s`` (shorter gaps were the resolver's
  call, with motion to go on),
- B's first position is within walking distance of A's last (``walk_speed_mps`` x gap +
  ``slack_m``), and
- appearance clearly prefers the pair: the cosine of the identities' mean appearances is at least
  ``min_cosine``, B is A's most similar successor and A is B's most similar predecessor, each
  by ``margin`` over the runner-up (the next successor of A seen at the same time as B, the next
  predecessor of B seen at the same time as A: a later one could be the same person's next return).

A mean over an identity's tracklets (a whole walk, every camera) is a steadier appearance than one
tracklet's few crops, which is why it is worth weighing at the identity level; the environment's
mean appearance is taken off every tracklet first, else all identity means look alike. The adapted
appearance (:mod:`spoton.identity.adaptation`), where the resolver is given it, is used here only
(never co-visible pairs: that is where it is over-confident for people walking side by side).
Joins are made in rounds (a joined identity may be joined again: A, B, C one person coming back
twice) until none is left. Ids are then dense again from 1 by first appearance.

Off by default (``ReentryConfig.enabled``): the sample environment's ground truth gives a person
who comes back a new id (person 19 leaves at frame 146 and person 1 comes in at the same spot
11 s later, centred cosine 0.88), so there every join counts as an identity error
(docs/benchmarks.md); it stays an option for sites where a returning person should keep their identity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ReentryConfig:
    """Thresholds of the re-entry stage (see the module docstring); off unless ``enabled``."""

    enabled: bool = False
    min_gap_s: float = 0.0
    max_gap_s: float = 120.0
    walk_speed_mps: float = 2.0
    slack_m: float = 2.0
    min_cosine: float = 0.8
    margin: float = 0.05
    end_window_s: float = 1.0
    max_rounds: int = 10

    def __post_init__(self):
        if self.max_gap_s < self.min_gap_s or min(self.walk_speed_mps, self.slack_m, self.end_window_s) < 0:
            raise ValueError(f"ReentryConfig needs 0 <= min_gap_s <= max_gap_s and non-negative distances, got {self}")


@dataclass(frozen=True)
class Reentry:
    """``assignments`` (tracklet_id, global_id) after the joins; ``joins``: one row per join made
    (the two identities as they were numbered before, gap, distance, cosine, margin)."""

    assignments: pd.DataFrame
    joins: pd.DataFrame


JOIN_COLUMNS = ["global_id_a", "global_id_b", "gap_s", "distance_m", "cosine", "margin"]


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def _centred(embeddings: pd.DataFrame) -> dict[str, np.ndarray]:
    """Tracklet id -> unit appearance minus the environment's mean appearance: what every person
    there shares (the scene, the light, the crop's background) would make every mean over many
    tracklets alike (raw identity means sit at cosine 0.9-0.98 whoever they are)."""
    if embeddings.empty:
        return {}
    matrix = _unit(np.stack([np.asarray(v, np.float64) for v in embeddings["embedding"]]))
    return dict(zip(embeddings["tracklet_id"].astype(str), matrix - matrix.mean(axis=0)))


def _identities(boxes: pd.DataFrame, vectors: dict[str, np.ndarray], config: ReentryConfig) -> pd.DataFrame:
    """Per identity: t0, t1, first / last map position (median over ``end_window_s``), mean appearance."""
    rows = []
    for gid, group in boxes.groupby("global_id", sort=True):
        ts = group["ts"].to_numpy(np.float64)
        xy = group[["map_x", "map_y"]].to_numpy(np.float64)
        t0, t1 = ts.min(), ts.max()
        located = np.isfinite(xy).all(axis=1)
        first = xy[located & (ts <= ts[located].min() + config.end_window_s)] if located.any() else xy[:0]
        last = xy[located & (ts >= ts[located].max() - config.end_window_s)] if located.any() else xy[:0]
        tids = group["tracklet_id"].astype(str).unique()
        weights = group["tracklet_id"].astype(str).value_counts()
        known = [t for t in tids if t in vectors]
        mean = (np.sum([vectors[t] * weights[t] for t in known], axis=0) if known else None)
        rows.append(dict(global_id=gid, t0=t0, t1=t1, first=np.median(first, axis=0) if len(first) else None,
                         last=np.median(last, axis=0) if len(last) else None,
                         appearance=None if mean is None else mean / max(np.linalg.norm(mean), 1e-12)))
    return pd.DataFrame(rows)


def _candidates(ids: pd.DataFrame, config: ReentryConfig) -> pd.DataFrame:
    """Every (A, B) pair that time and walking distance allow, with its cosine (and both spans)."""
    rows = []
    records = ids.to_dict("records")
    for a in records:
        if a["appearance"] is None or a["last"] is None:
            continue
        for b in records:
            gap = b["t0"] - a["t1"]
            if not config.min_gap_s < gap <= config.max_gap_s or b["appearance"] is None or b["first"] is None:
                continue
            distance = float(np.hypot(*(b["first"] - a["last"])))
            if distance > config.walk_speed_mps * gap + config.slack_m:
                continue
            rows.append(dict(global_id_a=a["global_id"], global_id_b=b["global_id"], gap_s=gap,
                             distance_m=distance, cosine=float(a["appearance"] @ b["appearance"]),
                             a_t0=a["t0"], a_t1=a["t1"], b_t0=b["t0"], b_t1=b["t1"]))
    return pd.DataFrame(rows, columns=JOIN_COLUMNS[:-1] + ["a_t0", "a_t1", "b_t0", "b_t1"])


def _best_by_margin(candidates: pd.DataFrame, side: str, other: str) -> pd.DataFrame:
    """Per identity on ``side``: its most similar candidate on ``other``, with the margin over the
    runner-up among the candidates seen at the same time as that best one (the true alternatives:
    one that is not could be the same person's later return, or earlier visit)."""
    rows = []
    for _, group in candidates.groupby(side, sort=True):
        group = group.sort_values("cosine", ascending=False, kind="mergesort")
        best = group.iloc[0]
        rest = group.iloc[1:]
        rivals = rest[(rest[f"{other}_t0"] <= best[f"{other}_t1"]) & (rest[f"{other}_t1"] >= best[f"{other}_t0"])]
        rows.append(dict(best, margin=best["cosine"] - (rivals["cosine"].max() if len(rivals) else -np.inf)))
    return pd.DataFrame(rows)


def _clear_joins(candidates: pd.DataFrame, config: ReentryConfig) -> pd.DataFrame:
    """The candidates that are each side's best by ``margin`` and at least ``min_cosine``."""
    if candidates.empty:
        return pd.DataFrame(columns=JOIN_COLUMNS)
    forward = _best_by_margin(candidates, "global_id_a", "b")
    backward = _best_by_margin(candidates, "global_id_b", "a")
    both = forward.merge(backward[["global_id_a", "global_id_b", "margin"]], on=["global_id_a", "global_id_b"],
                         suffixes=("", "_b"))
    both["margin"] = np.minimum(both["margin"], both.pop("margin_b"))
    ok = (both["cosine"] >= config.min_cosine) & (both["margin"] >= config.margin)
    return both[ok].reset_index(drop=True)[JOIN_COLUMNS]


def join_reentries(boxes: pd.DataFrame, assignments: pd.DataFrame, embeddings: pd.DataFrame,
                   config: ReentryConfig = ReentryConfig()) -> Reentry:
    """Join identities of ``assignments`` that are one person coming back (module docstring).
    ``boxes``: tracklet rows (tracklet_id, ts, map_x, map_y); ``embeddings``: tracklet_id,
    embedding (the adapted ones where there are)."""
    if not config.enabled:  # the default: nothing to join, no appearance to centre
        return Reentry(dense_ids(boxes, assignments[["tracklet_id", "global_id"]]), pd.DataFrame(columns=JOIN_COLUMNS))
    vectors = _centred(embeddings)
    current = assignments[["tracklet_id", "global_id"]].copy()
    made = []
    for _ in range(config.max_rounds):
        labelled = boxes[["tracklet_id", "ts", "map_x", "map_y"]].merge(current, on="tracklet_id")
        joins = _clear_joins(_candidates(_identities(labelled, vectors, config), config), config)
        if joins.empty:
            break
        made.append(joins)
        target = dict(zip(joins["global_id_b"], joins["global_id_a"]))  # B takes A's id (chains resolve below)

        def root(gid):
            while gid in target:
                gid = target[gid]
            return gid
        current["global_id"] = current["global_id"].map(root)
    return Reentry(dense_ids(boxes, current), pd.concat(made, ignore_index=True) if made
                   else pd.DataFrame(columns=JOIN_COLUMNS))


def dense_ids(boxes: pd.DataFrame, assignments: pd.DataFrame) -> pd.DataFrame:
    """``assignments`` with global ids dense from 1, ordered by each identity's first appearance
    (as the resolver numbers them), rows ordered by tracklet start."""
    start = boxes.groupby("tracklet_id", as_index=False).agg(start=("ts", "min"))
    table = assignments[["tracklet_id", "global_id"]].merge(start, on="tracklet_id")
    order = table.groupby("global_id").agg(start=("start", "min"), tid=("tracklet_id", "min"))
    order = order.sort_values(["start", "tid"], kind="mergesort")
    table["global_id"] = table["global_id"].map(pd.Series(np.arange(1, len(order) + 1), index=order.index))
    return (table.sort_values(["start", "tracklet_id"], kind="mergesort")[["tracklet_id", "global_id"]]
            .astype({"global_id": np.int64}).reset_index(drop=True))
