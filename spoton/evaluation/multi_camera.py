"""A multi-camera run scored against per-camera ground truth with global ids: each camera with
the global ids and with the online tracker's ids, all cameras as one sequence (cross-camera IDF1),
the map error of boxes and of the fused trajectories, and the fused trajectories on the floor
(each map position matched to a person's true foot point within 0.5 m and 1 m)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from spoton.environment import FrameClock
from spoton.evaluation.metrics import (MapError, TrackingMetrics, evaluate_cross_camera, evaluate_ground_plane,
                                       evaluate_sequence, map_errors, match_boxes)
from spoton.evaluation.mot import MotBoxes, boxes_from_tracks


@dataclass(frozen=True)
class EnvironmentEvaluation:
    """Metrics of a multi-camera run against per-camera ground truth with global ids."""

    per_camera: dict[str, TrackingMetrics]  # each camera, scored with global ids
    tracker_ids: dict[str, TrackingMetrics]  # each camera, scored with the online tracker's ids
    cross_camera: TrackingMetrics  # every camera as one sequence, global ids
    map_error: dict[str, MapError]  # per camera (box foot points) and "trajectories" (fused, smoothed)
    ground_plane: dict[float, TrackingMetrics] = field(default_factory=dict)  # match radius (m) -> trajectories' figures


GROUND_PLANE_RADII_M = (0.5, 1.0)  # multi-view detection's usual match radii (WILDTRACK, MultiviewX)


def floor_truth(truth: Mapping[str, MotBoxes]) -> MotBoxes:
    """Each person's true foot point once per frame: the union of the cameras' ground truth (one
    person seen by two cameras has the same map position in both), rows without one dropped."""
    parts = [boxes for boxes in truth.values() if len(boxes)]
    if not parts:
        return MotBoxes.empty()
    merged = MotBoxes(*(np.concatenate([getattr(b, f) for b in parts]) for f in
                        ("frame", "ids", "xyxy", "conf", "map_xy")))
    located = merged.select(np.isfinite(merged.map_xy).all(axis=1))
    _, first = np.unique(np.column_stack([located.frame, located.ids]), axis=0, return_index=True)
    return located.select(np.sort(first))


def trajectory_points(trajectories, fps: float) -> MotBoxes:
    """``map_trajectories`` rows (global_id, ts, map_x, map_y) as floor points on the frame clock
    (frame = round(ts x fps)); boxes are zero, only ``map_xy`` is scored."""
    frame = np.round(trajectories["ts"].to_numpy(np.float64) * fps).astype(np.int64)
    return MotBoxes.create(frame, trajectories["global_id"].to_numpy(np.int64), np.zeros((len(frame), 4)),
                           map_xy=trajectories[["map_x", "map_y"]].to_numpy(np.float64))


def evaluate_floor(truth: Mapping[str, MotBoxes], trajectories, fps: float, frames: np.ndarray,
                   radii_m=GROUND_PLANE_RADII_M) -> dict[float, TrackingMetrics]:
    """The fused trajectories against the people's true foot points on ``frames`` (environment
    frames annotated and processed by at least one camera), one result per match radius."""
    gt, pred = floor_truth(truth).in_frames(frames), trajectory_points(trajectories, fps).in_frames(frames)
    return {radius: evaluate_ground_plane(gt, pred, radius, frames) for radius in radii_m}


def _trajectory_errors(gt: MotBoxes, pred: MotBoxes, trajectories, fps: float) -> np.ndarray:
    """Metres between the truth and the matched identity's fused trajectory at that instant."""
    samples = {gid: (group["ts"].to_numpy(), group[["map_x", "map_y"]].to_numpy())
               for gid, group in trajectories.sort_values("ts").groupby("global_id")}
    gi, pi = match_boxes(gt, pred)
    errors = []
    for g, p in zip(gi, pi):
        if pred.ids[p] not in samples or not np.all(np.isfinite(gt.map_xy[g])):
            continue
        ts, xy = samples[pred.ids[p]]
        t = gt.frame[g] / fps
        k = int(np.clip(np.searchsorted(ts, t), 1, len(ts) - 1)) if len(ts) > 1 else 0
        k = k if len(ts) == 1 or abs(ts[k] - t) < abs(ts[k - 1] - t) else k - 1
        if abs(ts[k] - t) <= 0.5 / fps:
            errors.append(np.linalg.norm(xy[k] - gt.map_xy[g]))
    return np.asarray(errors)


def _tracker_ids(online):
    """The online tracker's own ids: segment + ``track_id`` where the table has them (the pipeline
    cuts one tracker id into several short tracklets), else ``tracklet_id``."""
    if {"segment", "track_id"} <= set(online.columns):
        return online["segment"].astype(str) + "/" + online["track_id"].astype(str)
    return online["tracklet_id"]


def evaluate_environment(gt: Mapping[str, MotBoxes], tracks, frames: Mapping[str, np.ndarray],
                         trajectories=None, fps: float | None = None, online_tracks=None) -> EnvironmentEvaluation:
    """Score a multi-camera run.

    ``tracks``: pandas rows with camera, global_frame, x1..y2, conf, map_x, map_y, tracklet_id,
    global_id. ``frames``: per camera, the environment frames that were processed and annotated.
    ``trajectories`` (global_id, ts, map_x, map_y) with the environment ``fps`` adds the map error
    of the fused trajectories and their ground-plane figures (:func:`evaluate_floor`). ``online_tracks`` (same columns but global_id) are scored with the
    tracker's ids for the "tracker ids" rows (default: ``tracks``).
    """
    online_tracks = tracks if online_tracks is None else online_tracks
    per_camera, tracker_ids, errors = {}, {}, {}
    predicted: dict[str, MotBoxes] = {}
    truth: dict[str, MotBoxes] = {}
    for camera in sorted(gt):
        camera_frames = np.asarray(frames.get(camera, []), np.int64)
        rows = tracks[(tracks["camera"] == camera) & tracks["global_frame"].isin(camera_frames)]
        predicted[camera] = boxes_from_tracks(rows, "global_id")
        truth[camera] = gt[camera].in_frames(camera_frames)
        per_camera[camera] = evaluate_sequence(truth[camera], predicted[camera], camera_frames)
        online = online_tracks[(online_tracks["camera"] == camera) & online_tracks["global_frame"].isin(camera_frames)]
        online = online.assign(tracker_id=_tracker_ids(online))
        tracker_ids[camera] = evaluate_sequence(truth[camera], boxes_from_tracks(online, "tracker_id"), camera_frames)
        errors[camera] = MapError.of(map_errors(truth[camera], predicted[camera]))
    cross = evaluate_cross_camera(truth, predicted, {c: frames.get(c, []) for c in truth})
    floor = {}
    if trajectories is not None and fps:
        distances = [_trajectory_errors(truth[c], predicted[c], trajectories, fps) for c in truth]
        errors["trajectories"] = MapError.of(np.concatenate(distances) if distances else np.zeros(0))
        scored = np.unique(np.concatenate([np.asarray(frames.get(c, []), np.int64) for c in truth] or [[]]))
        floor = evaluate_floor(truth, trajectories, fps, scored.astype(np.int64))
    return EnvironmentEvaluation(per_camera, tracker_ids, cross, errors, floor)


def evaluate_pipeline_tables(truth, tracklets, camera_tracks, frames, map_trajectories) -> EnvironmentEvaluation:
    """Score the pipeline's tables (pandas: all segments of tracklets and frames, the environment's
    final camera tracks and trajectories) against ``truth`` (a :class:`spoton.ground_truth.GroundTruth`):
    global-id rows score ``camera_tracks``, tracker-id rows the online ``tracklets``."""
    processed = {camera: truth.frames_of(camera, group["global_frame"].to_numpy())
                 for camera, group in frames.groupby("camera")}
    fps = FrameClock.of(frames["global_frame"], frames["ts"]).fps
    return evaluate_environment(truth.cameras, camera_tracks, processed, map_trajectories, fps,
                                online_tracks=tracklets)
