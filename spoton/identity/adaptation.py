"""Per-environment appearance adaptation: a projection head over the tracklet embeddings, learned
from the environment's own tracklets without labels (tracklet-supervised re-identification).

MobileNetV2's ImageNet features separate people weakly (same person ~0.85 cosine, different
~0.73). The tracklets themselves say which crops are one person and which are not:

- positives: two pieces of one tracker track (the pipeline cuts tracks every 2 s and at
  re-acquisitions, so one track gives several tracklets of, mostly, one person), and two
  tracklets of different cameras that the geometry joins without doubt (seen together within
  ``near_positive_m``, nobody else of either camera within ``ambiguity_m``): without these the
  head learns what one camera's pieces share, and the same person in two cameras drifts apart;
- negatives: two tracklets of one camera and segment seen at the same instant (a tracker never
  gives one person two ids at once), and two tracklets of different cameras seen at the same
  instants further apart on the map than ``far_negative_m`` (nobody is in two places at once).

A linear head ``(x - mean) @ weight`` (1280 -> ``dim``, initialised with the principal axes so it
starts as a centred projection of the raw features) is trained with ``1 - cos`` on positives and
``relu(cos - negative_margin)`` on negatives (Adam, torch on the CPU, a few seconds). Whole tracker
tracks are held out (``held_out_fraction``) and the separation (AUC, cosine gap) of their
pairs is reported before and after, which is what the ``appearance_adaptation`` asset check shows.

On the sample the head lifts same-vs-different AUC from ~0.78 to ~0.94 (ground-truth labels),
but it is over-confident for people walking side by side, exactly where geometry cannot help:
used in place of the raw features, or weighed into the resolver's links, it lowered the worst
cell of cross-camera IDF1 (docs/benchmarks.md), so the resolver's adapted evidence
(``IdentityConfig.adapted_*``) is off by default. Person search (the review app's
``search_index``) does use it where the environment has a head: there it ranks other tracks'
tracklets of the same person far better (mAP ~52 -> ~80 on the sample's ground truth).
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

TRACK_KEY = ["camera", "segment", "track_id"]
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AdaptationParams:
    """Training parameters (stored with the model; see the module docstring for each role)."""

    dim: int = 128
    steps: int = 300
    learning_rate: float = 1e-2
    negative_margin: float = 0.2
    weight_decay: float = 0.0
    held_out_fraction: float = 0.25
    far_negative_m: float = 4.0
    near_positive_m: float = 0.5
    ambiguity_m: float = 1.5
    min_common_frames: int = 3
    max_pairs_per_track: int = 64
    seed: int = 0
    threads: int = 1

    def __post_init__(self):
        if not 0 <= self.held_out_fraction < 1:
            raise ValueError(f"held_out_fraction {self.held_out_fraction}: use a fraction in [0, 1)")
        if self.dim < 1 or self.steps < 0 or self.learning_rate <= 0:
            raise ValueError(f"AdaptationParams need dim >= 1, steps >= 0, learning_rate > 0, got {self}")


@dataclass(frozen=True)
class TrackletPairs:
    """Unlabelled training evidence: one row of ``features`` per tracklet, pairs as row indices."""

    tracklet_ids: np.ndarray  # (N,) str
    track_of: np.ndarray  # (N,) int: index of the tracker track each tracklet is a piece of
    features: np.ndarray  # (N, D) float32
    positives: np.ndarray  # (P, 2) int
    negatives: np.ndarray  # (Q, 2) int

    def digest(self) -> str:
        """Hash of what the head is trained on (ids, features, pairs)."""
        h = hashlib.sha256()
        for part in (np.asarray(self.tracklet_ids, str).astype("U64"), self.features.astype(np.float32),
                     self.positives.astype(np.int64), self.negatives.astype(np.int64)):
            h.update(np.ascontiguousarray(part).tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class Separation:
    """How well a feature space tells same pairs from different ones."""

    auc: float
    same_cosine: float
    different_cosine: float
    same_pairs: int
    different_pairs: int

    @property
    def gap(self) -> float:
        return self.same_cosine - self.different_cosine


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counting half (Mann-Whitney)."""
    if not len(positive_scores) or not len(negative_scores):
        return float("nan")
    scores = np.concatenate([positive_scores, negative_scores])
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    n_pos, n_neg = len(positive_scores), len(negative_scores)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def separation(features: np.ndarray, same: np.ndarray, different: np.ndarray) -> Separation:
    """AUC and mean cosines of ``same`` vs ``different`` index pairs of ``features`` rows."""
    unit = _unit(np.asarray(features, np.float64))

    def cosines(pairs: np.ndarray) -> np.ndarray:
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        return np.einsum("ij,ij->i", unit[pairs[:, 0]], unit[pairs[:, 1]])

    s, d = cosines(same), cosines(different)
    return Separation(auc(s, d), float(s.mean()) if len(s) else float("nan"),
                      float(d.mean()) if len(d) else float("nan"), len(s), len(d))


def _pairs_within(groups: pd.Series, limit: int, rng: np.random.Generator) -> np.ndarray:
    """All index pairs inside each group (at most ``limit`` per group, sampled)."""
    out = []
    for members in groups:
        members = np.asarray(members)
        if len(members) < 2:
            continue
        i, j = np.triu_indices(len(members), 1)
        pick = rng.permutation(len(i))[:limit] if len(i) > limit else slice(None)
        out.append(np.column_stack([members[i[pick]], members[j[pick]]]))
    return np.concatenate(out).astype(np.int64) if out else np.zeros((0, 2), np.int64)


def tracklet_pairs(boxes: pd.DataFrame, embeddings: pd.DataFrame,
                   params: AdaptationParams = AdaptationParams()) -> TrackletPairs:
    """Positive and negative tracklet pairs from the boxes' own structure (see the module docstring).

    ``boxes``: tracklet rows (tracklet_id, camera, segment, track_id, global_frame, map_x, map_y);
    ``embeddings``: tracklet_id, embedding. Tracklets without an embedding are left out."""
    by_id = dict(zip(embeddings["tracklet_id"].astype(str), embeddings["embedding"]))
    boxes = boxes[boxes["tracklet_id"].astype(str).isin(by_id)]
    info = (boxes.groupby("tracklet_id", sort=True)
            .agg(camera=("camera", "first"), segment=("segment", "first"), track_id=("track_id", "first"),
                 start=("global_frame", "min")).reset_index())
    ids = info["tracklet_id"].astype(str).to_numpy()
    index = pd.Series(np.arange(len(ids)), index=ids)
    features = (np.stack([np.asarray(by_id[t], np.float32) for t in ids]) if len(ids)
                else np.zeros((0, 1), np.float32))
    track_of = info.groupby(TRACK_KEY, sort=True).ngroup().to_numpy()
    rng = np.random.default_rng(params.seed)
    positives = _pairs_within(info.groupby(TRACK_KEY)["tracklet_id"].apply(lambda s: index[s.astype(str)].to_numpy()),
                              params.max_pairs_per_track, rng)

    rows = boxes.assign(row=index[boxes["tracklet_id"].astype(str)].to_numpy())[
        ["row", "camera", "segment", "global_frame", "map_x", "map_y"]]
    # same camera and segment, same instant: two people
    same = rows.merge(rows, on=["camera", "segment", "global_frame"])
    same = same[same["row_x"] < same["row_y"]]
    negatives = [same[["row_x", "row_y"]].drop_duplicates().to_numpy(np.int64)]
    # different cameras, same instants, far apart on the map: two people
    located = rows.dropna(subset=["map_x", "map_y"])
    cross = located.merge(located, on="global_frame")
    cross = cross[(cross["camera_x"] != cross["camera_y"]) & (cross["row_x"] < cross["row_y"])]
    if len(cross):
        cross = cross.assign(d=np.hypot(cross["map_x_x"] - cross["map_x_y"], cross["map_y_x"] - cross["map_y_y"]))
        stats = (cross.groupby(["row_x", "row_y", "camera_x", "camera_y"])["d"].agg(["median", "size"])
                 .reset_index())
        stats = stats[stats["size"] >= params.min_common_frames]
        far = stats[stats["median"] > params.far_negative_m]
        negatives.append(far[["row_x", "row_y"]].to_numpy(np.int64))
        positives = np.concatenate([positives, _unambiguous_covisible(cross, params)])
    negatives = np.unique(np.concatenate(negatives).reshape(-1, 2), axis=0)
    return TrackletPairs(ids, track_of, features, positives, negatives)


def _unambiguous_covisible(cross: pd.DataFrame, params: AdaptationParams) -> np.ndarray:
    """Cross-camera pairs the geometry joins with confidence: over at least ``min_common_frames``
    instants each is the other camera's nearest box to the other, within ``near_positive_m``
    (median), with nobody else of that camera within ``ambiguity_m`` (median over those instants):
    two people side by side are left out. ``cross``: one row per (row_x, row_y, frame) with ``d``."""
    both = pd.concat([cross[["row_x", "row_y", "camera_y", "global_frame", "d"]].rename(
                          columns={"row_x": "a", "row_y": "b", "camera_y": "camera_b"}),
                      cross[["row_y", "row_x", "camera_x", "global_frame", "d"]].rename(
                          columns={"row_y": "a", "row_x": "b", "camera_x": "camera_b"})])
    both = both.sort_values(["a", "global_frame", "camera_b", "d"], kind="mergesort")
    rank = both.groupby(["a", "global_frame", "camera_b"]).cumcount().to_numpy()
    nearest = both[rank == 0].set_index(["a", "global_frame", "camera_b"])
    runner_up = both[rank == 1].set_index(["a", "global_frame", "camera_b"])["d"]
    nearest = nearest.assign(runner_up=runner_up.reindex(nearest.index).fillna(np.inf).to_numpy()).reset_index()
    per_pair = nearest.groupby(["a", "b"]).agg(d=("d", "median"), runner_up=("runner_up", "median"),
                                               n=("d", "size")).reset_index()
    ok = ((per_pair["d"] <= params.near_positive_m) & (per_pair["runner_up"] >= params.ambiguity_m)
          & (per_pair["n"] >= params.min_common_frames))
    good = set(zip(per_pair.loc[ok, "a"], per_pair.loc[ok, "b"]))
    pairs = [(a, b) for a, b in good if a < b and (b, a) in good]
    return np.array(sorted(pairs), np.int64).reshape(-1, 2)


def split_held_out(pairs: TrackletPairs, params: AdaptationParams) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over tracklets (train, held out): whole tracker tracks are held out."""
    tracks = np.unique(pairs.track_of)
    rng = np.random.default_rng(params.seed)
    held_tracks = rng.permutation(tracks)[:int(round(params.held_out_fraction * len(tracks)))]
    held = np.isin(pairs.track_of, held_tracks)
    return ~held, held


def _inside(pair_rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return pair_rows[mask[pair_rows[:, 0]] & mask[pair_rows[:, 1]]] if len(pair_rows) else pair_rows


@dataclass(frozen=True)
class ProjectionHead:
    """``unit((unit(x) - mean) @ weight)``: a versioned model (``version`` = hash of data and params)."""

    mean: np.ndarray  # (D,)
    weight: np.ndarray  # (D, dim)
    params: AdaptationParams
    data_sha256: str

    @property
    def version(self) -> str:
        h = hashlib.sha256(self.data_sha256.encode())
        h.update(json.dumps(asdict(self.params), sort_keys=True).encode())
        return h.hexdigest()[:16]

    def project(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, dim) unit rows."""
        return _unit((_unit(np.asarray(features, np.float64)) - self.mean) @ self.weight).astype(np.float32)

    def adapt(self, embeddings: pd.DataFrame) -> pd.DataFrame:
        """tracklet_id, embedding frame -> the same with the adapted embeddings."""
        if embeddings.empty:
            return embeddings[["tracklet_id", "embedding"]].copy()
        projected = self.project(np.stack([np.asarray(v, np.float32) for v in embeddings["embedding"]]))
        return pd.DataFrame({"tracklet_id": embeddings["tracklet_id"].to_numpy(), "embedding": list(projected)})

    def to_bytes(self) -> bytes:
        meta = {"format": FORMAT_VERSION, "params": asdict(self.params), "data_sha256": self.data_sha256,
                "version": self.version}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, mean=self.mean.astype(np.float32), weight=self.weight.astype(np.float32),
                            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ProjectionHead":
        with np.load(io.BytesIO(data)) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"projection head format {meta.get('format')!r}: this code reads {FORMAT_VERSION}")
            return cls(npz["mean"].astype(np.float64), npz["weight"].astype(np.float64),
                       AdaptationParams(**meta["params"]), meta["data_sha256"])


def train_head(features: np.ndarray, positives: np.ndarray, negatives: np.ndarray,
               params: AdaptationParams, data_sha256: str = "") -> ProjectionHead:
    """Fit the head on ``features`` rows with the given pairs (see the module docstring)."""
    import torch  # the core's other torch users import it lazily too: startup stays light

    torch.set_num_threads(params.threads)
    generator = torch.Generator().manual_seed(params.seed)
    x = np.asarray(features, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    centred = x - mean
    dim = min(params.dim, x.shape[1])
    # principal axes to start from (the first coordinates when there is nothing to learn from)
    vt = np.linalg.svd(centred, full_matrices=False)[2] if len(x) >= 2 else np.eye(x.shape[1])[:dim]
    init = np.zeros((x.shape[1], dim))
    init[:, :min(dim, len(vt))] = vt[:dim].T
    weight = torch.tensor(init + 1e-3 * torch.randn(init.shape, generator=generator, dtype=torch.float64).numpy(),
                          dtype=torch.float32, requires_grad=True)
    data = torch.tensor(centred, dtype=torch.float32)
    pos = torch.tensor(np.asarray(positives, np.int64).reshape(-1, 2))
    neg = torch.tensor(np.asarray(negatives, np.int64).reshape(-1, 2))
    optimiser = torch.optim.Adam([weight], lr=params.learning_rate, weight_decay=params.weight_decay)
    for _ in range(params.steps if len(pos) and len(neg) else 0):
        z = torch.nn.functional.normalize(data @ weight, dim=1)
        cos_pos = (z[pos[:, 0]] * z[pos[:, 1]]).sum(1)
        cos_neg = (z[neg[:, 0]] * z[neg[:, 1]]).sum(1)
        loss = (1 - cos_pos).mean() + torch.relu(cos_neg - params.negative_margin).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return ProjectionHead(mean, weight.detach().numpy().astype(np.float64), params, data_sha256)


@dataclass(frozen=True)
class AdaptationResult:
    """The trained head and the held-out separation before (raw features) and after (adapted)."""

    head: ProjectionHead
    before: Separation
    after: Separation
    train_positives: int
    train_negatives: int
    tracklets: int


def adapt_environment(boxes: pd.DataFrame, embeddings: pd.DataFrame,
                      params: AdaptationParams = AdaptationParams()) -> AdaptationResult:
    """Train the head on the environment's tracklets, held-out tracks scored before and after."""
    pairs = tracklet_pairs(boxes, embeddings, params)
    train, held = split_held_out(pairs, params)
    head = train_head(pairs.features, _inside(pairs.positives, train), _inside(pairs.negatives, train), params,
                      pairs.digest())
    same, different = _inside(pairs.positives, held), _inside(pairs.negatives, held)
    return AdaptationResult(head, separation(pairs.features, same, different),
                            separation(head.project(pairs.features), same, different),
                            len(_inside(pairs.positives, train)), len(_inside(pairs.negatives, train)),
                            len(pairs.tracklet_ids))
