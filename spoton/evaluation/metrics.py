"""TrackEval's metrics (``trackeval.metrics.HOTA``, ``CLEAR``, ``Identity``) fed directly with
per-frame IoU matrices, so the numbers are the ones the MOTChallenge evaluator prints.

- :func:`evaluate_sequence`: one camera (or any one sequence) -> :class:`TrackingMetrics`.
- :func:`evaluate_cross_camera`: the cameras' sequences concatenated into one (each camera's frames
  are distinct timesteps) and scored with global ids on both sides. IDF1's single global
  GT-id <-> predicted-id matching then rewards a person only for the frames, in every camera and
  segment, that carry the one global id matched to them.
- :func:`map_errors`: distance in metres between a matched box's map position and the ground
  truth's (both are on the floor plan).
- :func:`evaluate_ground_plane`: positions on the floor (``map_xy``) against the ground truth's foot
  points, matched within a radius in metres, as multi-view detection is scored (MVDet, WILDTRACK):
  the same TrackEval CLEAR / Identity code with a distance similarity instead of IoU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable, Iterable, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment
from trackeval.metrics import CLEAR, HOTA, Identity

from spoton.evaluation.mot import MotBoxes

IOU_THRESHOLD = 0.5  # the MOTChallenge match threshold for CLEAR and identity metrics


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), xyxy."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


@dataclass(frozen=True)
class TrackingMetrics:
    """MOTChallenge metrics of one sequence (rates in [0, 1], counts as integers)."""

    hota: float
    deta: float
    assa: float
    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    precision: float
    recall: float
    id_switches: int
    fragmentations: int
    mostly_tracked: int
    mostly_lost: int
    true_positives: int
    false_positives: int
    false_negatives: int
    gt_boxes: int
    gt_ids: int
    predicted_ids: int
    frames: int

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


Similarity = Callable[[MotBoxes, MotBoxes], np.ndarray]


def _box_iou(gt: MotBoxes, pred: MotBoxes) -> np.ndarray:
    return iou_matrix(gt.xyxy, pred.xyxy)


def distance_similarity(radius_m: float) -> Similarity:
    """Similarity of floor positions, ``1 - d / (2 radius)`` clipped to [0, 1]: at or above
    TrackEval's 0.5 match threshold exactly when ``d <= radius_m``; unknown positions never match."""
    if not radius_m > 0:
        raise ValueError(f"radius_m must be a positive distance in metres, got {radius_m}")

    def similarity(gt: MotBoxes, pred: MotBoxes) -> np.ndarray:
        distance = np.linalg.norm(gt.map_xy[:, None, :] - pred.map_xy[None, :, :], axis=2)
        return np.nan_to_num(np.clip(1.0 - distance / (2.0 * radius_m), 0.0, 1.0), nan=0.0)

    return similarity


def _trackeval_data(timesteps: list[tuple[MotBoxes, MotBoxes]], similarity: Similarity = _box_iou) -> dict:
    """TrackEval's per-sequence input: ids made contiguous, a similarity matrix per timestep."""
    gt_all = np.unique(np.concatenate([g.ids for g, _ in timesteps] or [np.zeros(0, np.int64)]))
    pr_all = np.unique(np.concatenate([p.ids for _, p in timesteps] or [np.zeros(0, np.int64)]))
    gt_ids, tracker_ids, scores = [], [], []
    for gt, pred in timesteps:
        gt_ids.append(np.searchsorted(gt_all, gt.ids))
        tracker_ids.append(np.searchsorted(pr_all, pred.ids))
        scores.append(similarity(gt, pred))
    return {"num_timesteps": len(timesteps), "num_gt_ids": len(gt_all), "num_tracker_ids": len(pr_all),
            "num_gt_dets": int(sum(len(g) for g, _ in timesteps)),
            "num_tracker_dets": int(sum(len(p) for _, p in timesteps)),
            "gt_ids": gt_ids, "tracker_ids": tracker_ids, "similarity_scores": scores}


def _split_by_frame(boxes: MotBoxes, frames: np.ndarray) -> list[MotBoxes]:
    order = np.argsort(boxes.frame, kind="stable")
    boxes = boxes.select(order)
    starts = np.searchsorted(boxes.frame, frames, side="left")
    stops = np.searchsorted(boxes.frame, frames, side="right")
    return [boxes.select(slice(a, b)) for a, b in zip(starts, stops)]


def _timesteps(gt: MotBoxes, pred: MotBoxes, frames: Iterable[int] | None) -> list[tuple[MotBoxes, MotBoxes]]:
    if frames is None:
        frames = np.union1d(gt.frame, pred.frame)
    frames = np.unique(np.fromiter(frames, np.int64))
    return list(zip(_split_by_frame(gt, frames), _split_by_frame(pred, frames)))


def _score(timesteps: list[tuple[MotBoxes, MotBoxes]], similarity: Similarity = _box_iou) -> TrackingMetrics:
    data = _trackeval_data(timesteps, similarity)
    quiet = {"PRINT_CONFIG": False}
    hota = HOTA().eval_sequence(data)
    clear = CLEAR(quiet).eval_sequence(data)
    identity = Identity(quiet).eval_sequence(data)
    # HOTA, DetA and AssA are arrays over the IoU thresholds 0.05..0.95: TrackEval reports their mean
    return TrackingMetrics(
        hota=float(np.mean(hota["HOTA"])), deta=float(np.mean(hota["DetA"])), assa=float(np.mean(hota["AssA"])),
        mota=float(clear["MOTA"]), motp=float(clear["MOTP"]), idf1=float(identity["IDF1"]),
        idp=float(identity["IDP"]), idr=float(identity["IDR"]),
        precision=float(clear["CLR_Pr"]), recall=float(clear["CLR_Re"]),
        id_switches=int(clear["IDSW"]), fragmentations=int(clear["Frag"]),
        mostly_tracked=int(clear["MT"]), mostly_lost=int(clear["ML"]),
        true_positives=int(clear["CLR_TP"]), false_positives=int(clear["CLR_FP"]),
        false_negatives=int(clear["CLR_FN"]), gt_boxes=data["num_gt_dets"], gt_ids=data["num_gt_ids"],
        predicted_ids=data["num_tracker_ids"], frames=data["num_timesteps"])


def evaluate_sequence(gt: MotBoxes, pred: MotBoxes, frames: Iterable[int] | None = None) -> TrackingMetrics:
    """Score one sequence. ``frames``: the frames to score (default: every frame either side has);
    pass the processed frames so frames the tracker never saw are not counted as misses, or the
    whole range so they are."""
    return _score(_timesteps(gt, pred, frames))


def evaluate_cross_camera(gt: Mapping[str, MotBoxes], pred: Mapping[str, MotBoxes],
                          frames: Mapping[str, Iterable[int]] | None = None) -> TrackingMetrics:
    """Score all cameras as one sequence with global ids: IDF1 here is cross-camera IDF1."""
    timesteps: list[tuple[MotBoxes, MotBoxes]] = []
    for camera in sorted(gt):
        camera_frames = None if frames is None else frames[camera]
        timesteps += _timesteps(gt[camera], pred.get(camera, MotBoxes.empty()), camera_frames)
    return _score(timesteps)


def evaluate_ground_plane(gt: MotBoxes, pred: MotBoxes, radius_m: float,
                          frames: Iterable[int] | None = None) -> TrackingMetrics:
    """Score floor positions (``map_xy``; boxes are ignored) within ``radius_m`` metres: MOTA,
    IDF1, precision, recall and ID switches as TrackEval's CLEAR / Identity compute them with
    that one match threshold. HOTA, DetA, AssA and MOTP are over the distance similarity
    (``1 - d / (2 radius)``), not IoU. ``frames`` as in :func:`evaluate_sequence`."""
    return _score(_timesteps(gt, pred, frames), distance_similarity(radius_m))


def match_boxes(gt: MotBoxes, pred: MotBoxes, threshold: float = IOU_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame maximum-IoU one-to-one matching (IoU >= threshold): index arrays into gt, pred."""
    gt_rows, pred_rows = [], []
    for frame in np.intersect1d(gt.frame, pred.frame):
        gi = np.flatnonzero(gt.frame == frame)
        pi = np.flatnonzero(pred.frame == frame)
        iou = iou_matrix(gt.xyxy[gi], pred.xyxy[pi])
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= threshold
        gt_rows.append(gi[rows[ok]])
        pred_rows.append(pi[cols[ok]])
    if not gt_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(gt_rows), np.concatenate(pred_rows)


def map_errors(gt: MotBoxes, pred: MotBoxes, threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """Metres between the map positions of IoU-matched boxes (pairs with a position on both sides)."""
    gi, pi = match_boxes(gt, pred, threshold)
    distance = np.linalg.norm(gt.map_xy[gi] - pred.map_xy[pi], axis=1)
    return distance[np.isfinite(distance)]


@dataclass(frozen=True)
class MapError:
    median_m: float
    p90_m: float
    pairs: int

    @classmethod
    def of(cls, distances: np.ndarray) -> "MapError":
        if len(distances) == 0:
            return cls(math.nan, math.nan, 0)
        return cls(float(np.median(distances)), float(np.percentile(distances, 90)), int(len(distances)))
