"""Tracking accuracy against MOTChallenge ground truth: HOTA, CLEAR MOT, identity, map error.

The metrics are TrackEval's (``trackeval.metrics.HOTA``, ``CLEAR``, ``Identity``), fed directly
with per-frame IoU matrices, so the numbers are the ones the MOTChallenge evaluator prints.

- :func:`evaluate_sequence`: one camera (or any one sequence) -> :class:`TrackingMetrics`.
- Cross-camera identity: the cameras' sequences are concatenated into one (each camera's frames
  are distinct timesteps) and scored with global ids on both sides. IDF1's single global
  GT-id <-> predicted-id matching then rewards a person only for the frames, in every camera and
  segment, that carry the one global id matched to them.
- :func:`map_errors`: distance in metres between a matched box's map position and the ground
  truth's (both are on the floor plan).

Frames are 0-based everywhere in memory; the MOTChallenge text files are 1-based.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from spoton.errors import SpotOnError

IOU_THRESHOLD = 0.5  # the MOTChallenge match threshold for CLEAR and identity metrics


class GroundTruthError(SpotOnError):
    """Ground truth or tracker output that cannot be read as MOTChallenge text."""


@dataclass(frozen=True, eq=False)
class MotBoxes:
    """Boxes of one sequence as parallel arrays: frame (0-based), id, xyxy, conf, map_xy.

    ``map_xy`` holds floor-plan metres (NaN where unknown); in MOTChallenge text it travels in
    the world ``x, y`` columns 8-9 (the MOT15 3D convention).
    """

    frame: np.ndarray  # (N,) int64
    ids: np.ndarray  # (N,) int64
    xyxy: np.ndarray  # (N, 4) float64
    conf: np.ndarray  # (N,) float64
    map_xy: np.ndarray  # (N, 2) float64

    def __post_init__(self):
        n = len(self.frame)
        shapes = {"frame": (n,), "ids": (n,), "xyxy": (n, 4), "conf": (n,), "map_xy": (n, 2)}
        for name, shape in shapes.items():
            value = getattr(self, name)
            if value.shape != shape:
                raise ValueError(f"MotBoxes.{name} has shape {value.shape}, expected {shape}")

    @classmethod
    def create(cls, frame, ids, xyxy, conf=None, map_xy=None) -> "MotBoxes":
        frame = np.asarray(frame, np.int64).reshape(-1)
        n = len(frame)
        return cls(frame=frame, ids=np.asarray(ids, np.int64).reshape(-1),
                   xyxy=np.asarray(xyxy, np.float64).reshape(n, 4),
                   conf=np.ones(n) if conf is None else np.asarray(conf, np.float64).reshape(-1),
                   map_xy=np.full((n, 2), np.nan) if map_xy is None else np.asarray(map_xy, np.float64).reshape(n, 2))

    @classmethod
    def empty(cls) -> "MotBoxes":
        return cls.create(np.zeros(0), np.zeros(0), np.zeros((0, 4)))

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, mask: np.ndarray) -> "MotBoxes":
        return MotBoxes(*(getattr(self, f.name)[mask] for f in fields(self)))

    def in_frames(self, frames: Iterable[int]) -> "MotBoxes":
        return self.select(np.isin(self.frame, np.fromiter(frames, np.int64)))

    @classmethod
    def read_mot(cls, path: Path | str) -> "MotBoxes":
        """Read ``frame,id,left,top,width,height,conf,x,y,z`` (frame 1-based; x, y optional metres)."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise GroundTruthError(f"{path} does not exist: give a MOTChallenge text file "
                                   "(frame,id,left,top,width,height,conf,x,y,z)") from None
        return cls.parse_mot(text, source=str(path))

    @classmethod
    def parse_mot(cls, text: str, source: str = "<text>") -> "MotBoxes":
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return cls.empty()
        try:
            rows = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", ndmin=2, dtype=np.float64)
        except ValueError as exc:
            raise GroundTruthError(f"{source} is not MOTChallenge text (numbers separated by commas, "
                                   f"frame,id,left,top,width,height,...): {exc}") from None
        if rows.shape[1] < 6:
            raise GroundTruthError(f"{source} has {rows.shape[1]} columns; MOTChallenge rows need at least 6 "
                                   "(frame,id,left,top,width,height)")
        if (rows[:, 0] < 1).any():
            raise GroundTruthError(f"{source} has frame numbers below 1: MOTChallenge frames are 1-based")
        left, top, width, height = rows[:, 2:6].T
        conf = rows[:, 6] if rows.shape[1] > 6 else np.ones(len(rows))
        map_xy = np.full((len(rows), 2), np.nan)
        if rows.shape[1] >= 9:
            world = rows[:, 7:9]
            known = ~np.all(world == -1, axis=1)  # -1,-1 means "no world position"
            map_xy[known] = world[known]
        return cls.create(rows[:, 0].astype(np.int64) - 1, rows[:, 1].astype(np.int64),
                          np.column_stack([left, top, left + width, top + height]), conf, map_xy)

    def to_mot(self) -> str:
        """MOTChallenge text, sorted by frame then id; world x, y = map metres (or -1, -1)."""
        order = np.lexsort((self.ids, self.frame))
        out = io.StringIO()
        for i in order:
            x1, y1, x2, y2 = self.xyxy[i]
            mx, my = self.map_xy[i]
            world = f"{mx:.3f},{my:.3f}" if np.isfinite(mx) and np.isfinite(my) else "-1,-1"
            out.write(f"{self.frame[i] + 1},{self.ids[i]},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                      f"{self.conf[i]:.4f},{world},-1\n")
        return out.getvalue()

    def write_mot(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_mot())
        return path


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


def _trackeval_data(timesteps: list[tuple[MotBoxes, MotBoxes]]) -> dict:
    """TrackEval's per-sequence input: ids made contiguous, IoU similarity per timestep."""
    gt_all = np.unique(np.concatenate([g.ids for g, _ in timesteps] or [np.zeros(0, np.int64)]))
    pr_all = np.unique(np.concatenate([p.ids for _, p in timesteps] or [np.zeros(0, np.int64)]))
    gt_ids, tracker_ids, similarity = [], [], []
    for gt, pred in timesteps:
        gt_ids.append(np.searchsorted(gt_all, gt.ids))
        tracker_ids.append(np.searchsorted(pr_all, pred.ids))
        similarity.append(iou_matrix(gt.xyxy, pred.xyxy))
    return {"num_timesteps": len(timesteps), "num_gt_ids": len(gt_all), "num_tracker_ids": len(pr_all),
            "num_gt_dets": int(sum(len(g) for g, _ in timesteps)),
            "num_tracker_dets": int(sum(len(p) for _, p in timesteps)),
            "gt_ids": gt_ids, "tracker_ids": tracker_ids, "similarity_scores": similarity}


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


def _score(timesteps: list[tuple[MotBoxes, MotBoxes]]) -> TrackingMetrics:
    from trackeval.metrics import CLEAR, HOTA, Identity  # heavy-ish import, only when scoring

    data = _trackeval_data(timesteps)
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


def metrics_table(rows: Mapping[str, TrackingMetrics], map_error: Mapping[str, MapError] | None = None) -> str:
    """A Markdown table of the headline metrics, one row per sequence (percent like MOTChallenge)."""
    header = ["sequence", "HOTA", "MOTA", "IDF1", "Prec", "Rec", "IDSW", "Frag", "MT", "ML", "GT ids",
              "pred ids", "frames", "map err p50 (m)", "map err p90 (m)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, m in rows.items():
        error = (map_error or {}).get(name)
        cells = [name, f"{100 * m.hota:.1f}", f"{100 * m.mota:.1f}", f"{100 * m.idf1:.1f}",
                 f"{100 * m.precision:.1f}", f"{100 * m.recall:.1f}", str(m.id_switches), str(m.fragmentations),
                 str(m.mostly_tracked), str(m.mostly_lost), str(m.gt_ids), str(m.predicted_ids), str(m.frames),
                 "-" if error is None or not error.pairs else f"{error.median_m:.2f}",
                 "-" if error is None or not error.pairs else f"{error.p90_m:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class EnvironmentEvaluation:
    """Metrics of a multi-camera run against per-camera ground truth with global ids."""

    per_camera: dict[str, TrackingMetrics]  # each camera, scored with global ids
    tracker_ids: dict[str, TrackingMetrics]  # each camera, scored with the online tracker's ids
    cross_camera: TrackingMetrics  # every camera as one sequence, global ids
    map_error: dict[str, MapError]  # per camera (box foot points) and "trajectories" (fused, smoothed)

    def table(self) -> str:
        rows = {f"{camera} (global ids)": m for camera, m in self.per_camera.items()}
        rows |= {f"{camera} (tracker ids)": m for camera, m in self.tracker_ids.items()}
        rows["all cameras (cross-camera)"] = self.cross_camera
        errors = {f"{camera} (global ids)": e for camera, e in self.map_error.items() if camera in self.per_camera}
        if "trajectories" in self.map_error:
            errors["all cameras (cross-camera)"] = self.map_error["trajectories"]
        return metrics_table(rows, errors)

    def records(self) -> list[dict]:
        """One flat dict per scored sequence (for a Parquet table or asset metadata)."""
        out = []
        for scope, group in (("global", self.per_camera), ("tracker", self.tracker_ids),
                             ("cross_camera", {"all": self.cross_camera})):
            for camera, metrics in group.items():
                error = self.map_error.get("trajectories" if scope == "cross_camera" else camera)
                record = {"scope": scope, "camera": camera, **metrics.as_dict()}
                if scope != "tracker" and error is not None:
                    record |= {"map_error_median_m": error.median_m, "map_error_p90_m": error.p90_m,
                               "map_error_pairs": error.pairs}
                out.append(record)
        return out


def boxes_from_tracks(tracks, id_column: str) -> MotBoxes:
    """MotBoxes (frame = ``global_frame``) from a tracks table (pandas) with x1..y2, conf, map_x/y."""
    ids = tracks[id_column]
    if ids.dtype == object:  # string ids (tracklet ids): any stable integer code will do
        ids = ids.astype("category").cat.codes
    return MotBoxes.create(tracks["global_frame"].to_numpy(), ids.to_numpy(),
                           tracks[["x1", "y1", "x2", "y2"]].to_numpy(), tracks["conf"].to_numpy(),
                           tracks[["map_x", "map_y"]].to_numpy(np.float64))


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
    of the fused trajectories. ``online_tracks`` (same columns but global_id) are scored with the
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
    if trajectories is not None and fps:
        distances = [_trajectory_errors(truth[c], predicted[c], trajectories, fps) for c in truth]
        errors["trajectories"] = MapError.of(np.concatenate(distances) if distances else np.zeros(0))
    return EnvironmentEvaluation(per_camera, tracker_ids, cross, errors)


def _lake_frame(lake, table: str, environment: str, segments: list[str] | None):
    return (lake.read_many(table, environment, segments) if segments is not None
            else lake.read(table, environment)).to_pandas()


def lake_segments(lake, environment: str) -> list[str]:
    """Segments of ``environment`` whose tracklets are in the lake."""
    prefix = f"tracklets/{environment}/"
    return sorted(k[len(prefix):-len(".parquet")] for k in lake.keys("tracklets") if k.startswith(prefix))


def evaluate_lake(store, lake, environment: str) -> EnvironmentEvaluation | None:
    """Score what the pipeline wrote to ``lake`` for ``environment`` against the ground truth in
    ``store``; None when the environment has no ground truth."""
    from spoton.ground_truth import load_ground_truth

    truth = load_ground_truth(store, environment)
    if truth is None:
        return None
    segments = lake_segments(lake, environment)
    return evaluate_pipeline_tables(truth, _lake_frame(lake, "tracklets", environment, segments),
                                    _lake_frame(lake, "camera_tracks", environment, None),
                                    _lake_frame(lake, "frames", environment, segments),
                                    _lake_frame(lake, "map_trajectories", environment, None))


def evaluate_pipeline_tables(truth, tracklets, camera_tracks, frames, map_trajectories) -> EnvironmentEvaluation:
    """Score the pipeline's tables (pandas: all segments of tracklets and frames, the environment's
    final camera tracks and trajectories) against ``truth`` (a :class:`spoton.ground_truth.GroundTruth`):
    global-id rows score ``camera_tracks``, tracker-id rows the online ``tracklets``."""
    processed = {camera: truth.frames_of(camera, group["global_frame"].to_numpy())
                 for camera, group in frames.groupby("camera")}
    from spoton.environment import FrameClock

    fps = FrameClock.of(frames["global_frame"], frames["ts"]).fps
    return evaluate_environment(truth.cameras, camera_tracks, processed, map_trajectories, fps,
                                online_tracks=tracklets)


def evaluate_video(tracks_path: Path, gt_path: Path, frames: tuple[int, int] | None = None, *,
                   processed_only: bool = False) -> tuple[TrackingMetrics, MapError]:
    """Score a ``spoton track`` output (tracks.parquet) against one video's MOTChallenge ground truth.

    ``frames`` = [start, stop) video frames (default: the ground truth's span); every frame of the
    span counts unless ``processed_only`` (then frames the tracker skipped are not misses).
    """
    import pyarrow.parquet as pq

    gt = MotBoxes.read_mot(gt_path)
    tracks = pq.read_table(tracks_path).to_pandas().rename(columns={"frame_index": "global_frame"})
    pred = boxes_from_tracks(tracks, "track_id")
    start, stop = frames if frames else (int(gt.frame.min()), int(gt.frame.max()) + 1)
    scored = np.unique(pred.frame) if processed_only else np.arange(start, stop)
    scored = scored[(scored >= start) & (scored < stop)]
    gt, pred = gt.in_frames(scored), pred.in_frames(scored)
    return evaluate_sequence(gt, pred, scored), MapError.of(map_errors(gt, pred))


def export_mot(lake, environment: str, out_dir: Path, global_ids: bool = True) -> list[tuple[Path, MotBoxes]]:
    """Write ``{out_dir}/{environment}/{camera}.txt`` (MOTChallenge; frame = environment frame + 1,
    world x, y = map metres) from the pipeline's tracklets, with global or per-camera tracker ids."""
    segments = lake_segments(lake, environment)
    if not segments:
        raise SpotOnError(f"no tracklets of environment {environment!r} in {lake.store.uri}: "
                          "materialize its partitions first (make demo)")
    tracks = (lake.read("camera_tracks", environment) if global_ids
              else lake.read_many("tracklets", environment, segments)).to_pandas()
    written = []
    for camera, rows in tracks.groupby("camera"):
        boxes = boxes_from_tracks(rows, "global_id" if global_ids else "tracklet_id")
        written.append((boxes.write_mot(Path(out_dir) / environment / f"{camera}.txt"), boxes))
    return written
