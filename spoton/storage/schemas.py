"""The one place where table columns are defined: a contract per table, Arrow schema plus meaning.

Every table the pipeline writes has a :class:`TableContract`: its columns in order, each with an
Arrow type and a one-line description. Writers build their tables through the contract
(:meth:`TableContract.table`), the lake's IO manager checks what it stores and reads against it
(:meth:`TableContract.check`), and the DuckDB catalog carries the descriptions as column comments,
so ``select * from duckdb_columns()`` documents the data.

Boxes are kept twice: in source-frame pixels (``x1..y2``) and normalised to [0, 1] of the frame
(``bbox_x, bbox_y`` top-left, ``bbox_w, bbox_h``), the same convention as the live tick.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spoton.errors import SpotOnError
from spoton.records import CameraFrameResult
from spoton.storage.store import StoreError


class TableContractError(SpotOnError):
    """A table whose columns or types are not those of its contract."""


@dataclass(frozen=True)
class Column:
    """One column: name, Arrow type and what a value means (one line, shown in the catalog)."""

    name: str
    type: pa.DataType
    description: str
    nullable: bool = True

    def __post_init__(self) -> None:
        if not self.description.strip() or "\n" in self.description:
            raise ValueError(f"column {self.name!r} needs a one-line description")

    @property
    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable)

    def described(self, description: str) -> "Column":
        """The same column with the meaning it has in another table."""
        return Column(self.name, self.type, description, self.nullable)


ENVIRONMENT = Column("environment", pa.string(), "environment (site) name; added by the lake from the partition",
                     nullable=False)
SEGMENT = Column("segment", pa.string(), "segment (sub-video index, e.g. 01) the row comes from", nullable=False)
SOURCE = Column("source", pa.string(), "batch (the Dagster pipeline over stored sub-videos) or live (a live "
                                       "session); added by the lake", nullable=False)
SESSION_ID = Column("session_id", pa.string(), "the live session the row comes from; null for batch rows")
SOURCES = ("batch", "live")


@dataclass(frozen=True)
class TableContract:
    """A table's columns, types and meaning.

    ``per_segment`` tables are stored per (environment, segment) partition, the others per
    environment; the lake adds the partition columns (``environment``, ``segment``) in front.
    ``live`` tables are also appended to by live sessions (``spoton.live.history``): their files
    carry ``source`` and ``session_id`` after the partition columns (the lake fills them for batch).
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    per_segment: bool = False
    live: bool = False

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name} names a column twice: {names}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([c.field for c in self.columns], metadata={"spoton.table": self.name})

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        """The columns of a lake file: the partition columns the lake adds, then the table's own."""
        partition = (ENVIRONMENT, SEGMENT) if self.per_segment else (ENVIRONMENT,)
        partition += (SOURCE, SESSION_ID) if self.live else ()
        return tuple(c for c in partition if c.name not in self.names) + self.columns

    def table(self, data) -> pa.Table:
        """``data`` (an Arrow table or a pandas frame with exactly the contract's columns) as the
        contract's Arrow table: columns in contract order, each cast to its type (pandas: NaN -> null)."""
        self._check_names(list(data.column_names if isinstance(data, pa.Table) else data.columns), self.columns)
        try:
            if isinstance(data, pa.Table):
                table = pa.Table.from_arrays([data[c.name].cast(c.type) for c in self.columns], schema=self.schema)
            else:
                table = pa.Table.from_pandas(data, schema=self.schema, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as error:
            raise TableContractError(f"{self.name}: a column cannot take its contract type ({error}); "
                                     f"the contract is {self._types(self.columns)}") from None
        return self._check_nulls(table, self.columns)

    def check(self, table: pa.Table, stored: bool = False) -> pa.Table:
        """``table`` unchanged when it has exactly the contract's columns (``stored``: as a lake
        file, with the partition columns) of exactly its types; else a :class:`TableContractError`."""
        expected = self.stored_columns if stored else self.columns
        self._check_names(table.column_names, expected)
        wrong = [f"{c.name} is {table.schema.field(c.name).type}, the contract says {c.type} ({c.description})"
                 for c in expected if not table.schema.field(c.name).type.equals(c.type)]
        if wrong:
            raise TableContractError(f"{self.name}: mistyped column{'s' * (len(wrong) > 1)}: {'; '.join(wrong)}. "
                                     "Build the table with spoton.storage.schemas (re-materialize it if it is old)")
        return self._check_nulls(table, expected)

    def empty_frame(self):
        """A pandas frame with no rows and the contract's columns and dtypes."""
        return self.schema.empty_table().to_pandas()

    def _check_names(self, names: list[str], expected: tuple[Column, ...]) -> None:
        missing = [c for c in expected if c.name not in names]
        extra = [n for n in names if n not in {c.name for c in expected}]
        if missing or extra:
            problems = [f"missing {c.name} ({c.type}: {c.description})" for c in missing]
            problems += [f"unexpected {name}" for name in extra]
            raise TableContractError(
                f"{self.name}: {'; '.join(problems)}. Its columns must be exactly {self._types(expected)}; "
                "a new column goes into its contract in spoton/storage/schemas.py first")

    def _check_nulls(self, table: pa.Table, columns: tuple[Column, ...]) -> pa.Table:
        nulls = [f"{c.name} ({table[c.name].null_count})" for c in columns
                 if not c.nullable and table[c.name].null_count]
        if nulls:
            raise TableContractError(f"{self.name}: null values in column(s) that must have one in every row: "
                                     f"{', '.join(nulls)}")
        return table

    @staticmethod
    def _types(columns: tuple[Column, ...]) -> str:
        return ", ".join(f"{c.name} {c.type}" for c in columns)


# ---- columns shared by several tables --------------------------------------------------------
CAMERA = Column("camera", pa.string(), "camera name within the environment", nullable=False)
FRAME_INDEX = Column("frame_index", pa.int64(), "0-based frame of the camera's own video (sub-video)",
                     nullable=False)
TS = Column("ts", pa.float64(), "seconds on the environment clock (global_frame / fps; the video's time "
                                "in `spoton track` output)", nullable=False)
GLOBAL_FRAME = Column("global_frame", pa.int64(), "frame on the environment clock: the sub-video's "
                                                  "start_frame + frame_index")
BOX = (Column("x1", pa.float32(), "box left edge, source-frame pixels"),
       Column("y1", pa.float32(), "box top edge, source-frame pixels"),
       Column("x2", pa.float32(), "box right edge, source-frame pixels"),
       Column("y2", pa.float32(), "box bottom edge, source-frame pixels"))
NORMALISED_BOX = (Column("bbox_x", pa.float32(), "box left edge / frame width, in [0, 1]"),
                  Column("bbox_y", pa.float32(), "box top edge / frame height, in [0, 1]"),
                  Column("bbox_w", pa.float32(), "box width / frame width"),
                  Column("bbox_h", pa.float32(), "box height / frame height"))
CONF = Column("conf", pa.float32(), "detector score of the box, in [0, 1]")
CLASS_ID = Column("class_id", pa.int32(), "COCO class of the box (0 = person)")
MAP_X = Column("map_x", pa.float64(), "floor-plan x in metres of the box's foot point; null without calibration")
MAP_Y = Column("map_y", pa.float64(), "floor-plan y in metres of the box's foot point; null without calibration")
TRACKLET_ID = Column("tracklet_id", pa.string(), "camera/segment/track_id.piece: a piece of one tracker "
                                                 "track (cut at re-acquisitions and every 2 s)", nullable=False)
GLOBAL_ID = Column("global_id", pa.int64(), "one id per real person across cameras and segments "
                                            "(global_identities)", nullable=False)
START_TS = Column("start_ts", pa.float64(), "ts of the tracklet's first box")
END_TS = Column("end_ts", pa.float64(), "ts of the tracklet's last box")
N_BOXES = Column("n_boxes", pa.int64(), "boxes in the tracklet")
ZONE = Column("zone", pa.string(), "zone name (a floor polygon of the environment)", nullable=False)

_DETECTION_COLUMNS = (
    CAMERA, FRAME_INDEX, TS,
    Column("det_index", pa.int32(), "0-based index of the detection within its frame", nullable=False),
    Column("track_id", pa.int64(), "the tracker's id for this box; null when the tracker did not confirm it"),
    *BOX, *NORMALISED_BOX, CONF, CLASS_ID)
_TRACK_COLUMNS = (
    CAMERA, FRAME_INDEX, TS,
    Column("track_id", pa.int64(), "the online tracker's own id (per camera and segment)", nullable=False),
    *BOX, *NORMALISED_BOX, CONF, CLASS_ID, MAP_X, MAP_Y)

# `spoton track` output files (detections.parquet, tracks.parquet before the offline pass)
DETECTIONS_SCHEMA = pa.schema([c.field for c in _DETECTION_COLUMNS], metadata={"spoton.table": "detections"})
TRACKS_SCHEMA = pa.schema([c.field for c in _TRACK_COLUMNS], metadata={"spoton.table": "tracks"})

# ---- the lake's tables, in pipeline order ----------------------------------------------------
SUB_VIDEO_MANIFEST = TableContract(
    "sub_video_manifest", "each camera's sub-video of a segment, probed, and where it starts on the environment clock",
    (CAMERA, Column("key", pa.string(), "object-store key of the sub-video"),
     Column("codec", pa.string(), "video codec as probed (e.g. h264)"),
     Column("fps", pa.float64(), "frames per second of the sub-video"),
     Column("frame_count", pa.int64(), "frames in the sub-video"),
     Column("width", pa.int32(), "frame width, pixels"),
     Column("height", pa.int32(), "frame height, pixels"),
     Column("duration_s", pa.float64(), "duration, seconds"),
     Column("size_bytes", pa.int64(), "file size, bytes"),
     Column("start_frame", pa.int64(), "environment frame of the sub-video's first frame: the camera's start "
                                       "offset plus the frames of its earlier segments")),
    per_segment=True)
FRAMES = TableContract(
    "frames", "the frames processed: every camera's frames on the sampling grid of the environment clock",
    (CAMERA, FRAME_INDEX.described("0-based frame of the camera's sub-video"),
     GLOBAL_FRAME.described("frame on the environment clock (start_frame + frame_index); kept frames of all "
                            "cameras share these instants"),
     TS.described("seconds on the environment clock (global_frame / fps)")),
    per_segment=True)
DETECTIONS = TableContract(
    "detections", "every detector box of the processed frames, with the tracker's id where it confirmed the box",
    (*_DETECTION_COLUMNS, GLOBAL_FRAME), per_segment=True)
TRACKLETS = TableContract(
    "tracklets", "the online tracker's boxes per camera, cut into tracklets (one row per box per frame)",
    (*_TRACK_COLUMNS, GLOBAL_FRAME, TRACKLET_ID), per_segment=True)
TRACKLET_EMBEDDINGS = TableContract(
    "tracklet_embeddings", "one appearance vector per tracklet: the unit mean embedding of its best crops",
    (TRACKLET_ID, CAMERA, START_TS, END_TS, N_BOXES,
     Column("n_crops", pa.int64(), "crops embedded for the tracklet"),
     Column("embedding", pa.list_(pa.float32()), "unit-length mean of the crops' appearance embeddings")),
    per_segment=True)
GLOBAL_IDENTITIES = TableContract(
    "global_identities", "each tracklet's global id (one per real person), analysts' corrections applied",
    (TRACKLET_ID, CAMERA, SEGMENT.described("segment the tracklet comes from"), START_TS, END_TS, N_BOXES,
     GLOBAL_ID.described("the person's id across cameras and segments (resolver, then identity_overrides)"),
     Column("override_version", pa.int64(), "version of the last identity_overrides correction that moved "
                                            "this tracklet; null when the resolver's answer stands")))
CAMERA_TRACKS = TableContract(
    "camera_tracks", "each camera's final tracks: boxes with their global id, short holes interpolated, "
                     "fleeting identities dropped",
    (CAMERA, GLOBAL_FRAME.described("frame on the environment clock; null for live rows"),
     TS.described("seconds on the environment clock; for live rows unix time (s) of the frame's capture"),
     GLOBAL_ID.described("one id per real person across cameras and segments (live: within its session)"),
     TRACKLET_ID.described("the tracklet the box comes from (for an interpolated box: the one before the hole); "
                           "live: camera/session/track_id.0"),
     *BOX, CONF,
     *(c.described(c.description + ", and (batch) where every box of the identity at that instant is cut by its "
                                   "view's left, right or bottom border") for c in (MAP_X, MAP_Y)),
     Column("interpolated", pa.bool_(), "true for a box filled in across a hole of up to 1.5 s, "
                                        "not seen by the detector")), live=True)
MAP_TRAJECTORIES = TableContract(
    "map_trajectories", "each identity's path on the floor: cameras fused per instant, then smoothed",
    (GLOBAL_ID.described("one id per real person across cameras and segments (live: within its session)"),
     Column("ts", pa.float64(), "seconds on the environment clock (mean of the fused boxes' ts); for live rows "
                                "unix time (s) of the processed instant"),
     Column("map_x", pa.float64(), "smoothed floor-plan x, metres (live: median of the cameras, unsmoothed)"),
     Column("map_y", pa.float64(), "smoothed floor-plan y, metres (live: median of the cameras, unsmoothed)"),
     Column("n_cameras", pa.int64(), "cameras that saw the identity at this instant"),
     Column("speed_mps", pa.float64(), "walking speed from the smoothing fit, m/s; null for a lone sample "
                                       "and for live rows")), live=True)
HEATMAPS = TableContract(
    "heatmaps", "person-seconds and distinct people per visited floor cell (0.5 m grid)",
    (Column("cell_ix", pa.int64(), "cell column, from the floor plan's minimum x"),
     Column("cell_iy", pa.int64(), "cell row, from the floor plan's minimum y"),
     Column("x_m", pa.float64(), "floor-plan x of the cell centre, metres"),
     Column("y_m", pa.float64(), "floor-plan y of the cell centre, metres"),
     Column("seconds", pa.float64(), "person-seconds spent in the cell"),
     Column("people", pa.int64(), "distinct global ids seen in the cell")))
OCCUPANCY = TableContract(
    "occupancy", "people per zone per 10 s bucket of the environment clock, empty buckets included",
    (ZONE, Column("t_start", pa.float64(), "bucket start, seconds on the environment clock"),
     Column("t_end", pa.float64(), "bucket end, seconds on the environment clock"),
     Column("people", pa.int64(), "distinct global ids in the zone during the bucket"),
     Column("mean_people", pa.float64(), "time-averaged count: person-seconds in the zone / bucket seconds")))
DWELL = TableContract(
    "dwell", "each visit of an identity to a zone",
    (GLOBAL_ID, ZONE, Column("enter_ts", pa.float64(), "first sample inside the zone, seconds on the environment clock"),
     Column("exit_ts", pa.float64(), "last sample inside plus its step, seconds on the environment clock"),
     Column("seconds", pa.float64(), "visit length: exit_ts - enter_ts")))
IDENTITY_OVERRIDES = TableContract(
    "identity_overrides", "analysts' identity corrections: append-only, versioned, replayed over the resolver",
    (Column("version", pa.int64(), "1, 2, ... in the order the corrections were made", nullable=False),
     Column("action", pa.string(), "merge (two identities are one person), split (a tracklet is its own "
                                   "person) or revoke (undo a version)", nullable=False),
     Column("tracklet_id", pa.string(), "the tracklet corrected (merge, split)"),
     Column("other_tracklet_id", pa.string(), "a tracklet of the other identity (merge)"),
     Column("revokes_version", pa.int64(), "the version this row undoes (revoke)"),
     Column("global_id", pa.int64(), "tracklet_id's global id when the correction was made (for the reader)"),
     Column("other_global_id", pa.int64(), "other_tracklet_id's global id then (for the reader)"),
     Column("author", pa.string(), "who made the correction", nullable=False),
     Column("created_at", pa.timestamp("us", tz="UTC"), "when the correction was made (UTC)", nullable=False),
     Column("note", pa.string(), "the analyst's note")))
TRACKING_EVALUATION = TableContract(
    "tracking_evaluation", "tracking accuracy against the environment's ground truth (MOTChallenge metrics, "
                           "TrackEval); rates in [0, 1]",
    (Column("scope", pa.string(), "global (a camera scored with global ids), tracker (with the online tracker's "
                                  "ids), cross_camera (all cameras as one sequence) or ground_plane_0.5m / "
                                  "ground_plane_1m (map_trajectories against true foot points within that distance)"),
     Column("camera", pa.string(), "camera scored; all for cross_camera"),
     Column("hota", pa.float64(), "HOTA, mean over IoU thresholds 0.05..0.95"),
     Column("deta", pa.float64(), "HOTA's detection accuracy DetA"),
     Column("assa", pa.float64(), "HOTA's association accuracy AssA"),
     Column("mota", pa.float64(), "MOTA: 1 - (misses + false positives + id switches) / ground-truth boxes"),
     Column("motp", pa.float64(), "MOTP: mean IoU of matched boxes"),
     Column("idf1", pa.float64(), "IDF1: F1 of identity-matched boxes (cross_camera: cross-camera IDF1)"),
     Column("idp", pa.float64(), "identity precision"),
     Column("idr", pa.float64(), "identity recall"),
     Column("precision", pa.float64(), "detection precision at IoU 0.5"),
     Column("recall", pa.float64(), "detection recall at IoU 0.5"),
     Column("id_switches", pa.int64(), "identity switches (CLEAR)"),
     Column("fragmentations", pa.int64(), "track fragmentations (CLEAR)"),
     Column("mostly_tracked", pa.int64(), "ground-truth people tracked over 80% of their life"),
     Column("mostly_lost", pa.int64(), "ground-truth people tracked under 20% of their life"),
     Column("true_positives", pa.int64(), "matched boxes"),
     Column("false_positives", pa.int64(), "predicted boxes matching no ground truth"),
     Column("false_negatives", pa.int64(), "ground-truth boxes matched by no prediction"),
     Column("gt_boxes", pa.int64(), "ground-truth boxes scored"),
     Column("gt_ids", pa.int64(), "ground-truth people"),
     Column("predicted_ids", pa.int64(), "predicted ids"),
     Column("frames", pa.int64(), "frames scored"),
     Column("map_error_median_m", pa.float64(), "median floor distance to the truth, metres (cross_camera: of "
                                                "the fused trajectories); null for tracker rows"),
     Column("map_error_p90_m", pa.float64(), "90th percentile of that distance, metres"),
     Column("map_error_pairs", pa.int64(), "matched box pairs the map error is measured on")))
RETENTION_LOG = TableContract(
    "retention_log", "what retention deleted (live history, uploads), one row per object, one file per run "
                     "(spoton.storage.retention); environment is empty for uploads (they belong to none)",
    (Column("deleted_at", pa.timestamp("us", tz="UTC"), "when the retention run deleted it", nullable=False),
     Column("retention_days", pa.float64(), "SPOTON_RETENTION_DAYS of that run", nullable=False),
     Column("dated", pa.timestamp("us", tz="UTC"), "what made it expire: the end of the live file's day, or the "
                                                   "upload's creation time", nullable=False),
     Column("store", pa.string(), "lake or store", nullable=False),
     Column("kind", pa.string(), "live_history (a live session's lake file), upload or thumbnail", nullable=False),
     Column("key", pa.string(), "the object's key in that store", nullable=False)))

APPEARANCE_ADAPTATION = TableContract(
    "appearance_adaptation", "the environment's appearance projection head (spoton.identity.adaptation): one row "
                             "per training, the model itself in the store at model_key",
    (Column("version", pa.string(), "model version: hash of the training data and parameters", nullable=False),
     Column("model_key", pa.string(), "store key of the model file (.npz: mean, weight, metadata)", nullable=False),
     Column("data_sha256", pa.string(), "hash of the tracklet ids, embeddings and pairs trained on", nullable=False),
     Column("params", pa.string(), "training parameters, JSON"),
     Column("tracklets", pa.int64(), "tracklets with an embedding"),
     Column("train_positives", pa.int64(), "same-person pairs trained on (pieces of one track, sure cross-camera joins)"),
     Column("train_negatives", pa.int64(), "different-person pairs trained on (co-visible, or far apart at one instant)"),
     Column("held_out_positives", pa.int64(), "same-person pairs of the held-out tracks"),
     Column("held_out_negatives", pa.int64(), "different-person pairs of the held-out tracks"),
     Column("auc_before", pa.float64(), "held-out same-vs-different AUC of the raw embeddings' cosine"),
     Column("auc_after", pa.float64(), "held-out same-vs-different AUC of the adapted embeddings' cosine"),
     Column("gap_before", pa.float64(), "held-out mean same cosine minus mean different cosine, raw"),
     Column("gap_after", pa.float64(), "the same, adapted"),
     Column("train_s", pa.float64(), "seconds the training took")))

TABLES: dict[str, TableContract] = {contract.name: contract for contract in (
    SUB_VIDEO_MANIFEST, FRAMES, DETECTIONS, TRACKLETS, TRACKLET_EMBEDDINGS, GLOBAL_IDENTITIES, CAMERA_TRACKS,
    MAP_TRAJECTORIES, HEATMAPS, OCCUPANCY, DWELL, IDENTITY_OVERRIDES, TRACKING_EVALUATION, RETENTION_LOG,
    APPEARANCE_ADAPTATION)}


def table_contract(name: str) -> TableContract:
    """The contract of lake table ``name``."""
    try:
        return TABLES[name]
    except KeyError:
        raise TableContractError(f"no table contract for {name!r}: the lake's tables are {sorted(TABLES)}; "
                                 "a new table gets its contract in spoton/storage/schemas.py") from None


def normalised_box_columns(xyxy: np.ndarray, width, height) -> dict[str, np.ndarray]:
    """``bbox_x, bbox_y, bbox_w, bbox_h`` of pixel boxes (N, 4); ``width``, ``height``: the frame's,
    one number or one per row. Computed in the boxes' dtype."""
    return {"bbox_x": xyxy[:, 0] / width, "bbox_y": xyxy[:, 1] / height,
            "bbox_w": (xyxy[:, 2] - xyxy[:, 0]) / width, "bbox_h": (xyxy[:, 3] - xyxy[:, 1]) / height}


def _box_columns(xyxy: np.ndarray, frame_size: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel and normalised box columns; ``frame_size`` is (N, 2) width, height per row."""
    return {"x1": xyxy[:, 0], "y1": xyxy[:, 1], "x2": xyxy[:, 2], "y2": xyxy[:, 3],
            **normalised_box_columns(xyxy, frame_size[:, 0], frame_size[:, 1])}


def _frame_columns(results: list[CameraFrameResult], counts: np.ndarray) -> dict[str, np.ndarray]:
    """camera, frame_index, ts and the (width, height) frame size, each result's repeated for its rows."""
    def repeat(values: list, dtype, shape: tuple[int, ...] = ()) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=dtype).reshape(len(results), *shape), counts, axis=0)

    return {"camera": repeat([r.camera for r in results], object),
            "frame_index": repeat([r.frame_index for r in results], np.int64),
            "ts": repeat([r.ts for r in results], np.float64),
            "frame_size": repeat([r.frame_size for r in results], np.float32, (2,))}


def _concat(arrays: list[np.ndarray], empty_shape: tuple[int, ...], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(empty_shape, dtype)


def detections_table(results: Iterable[CameraFrameResult]) -> pa.Table:
    """One row per detection; built from concatenated columns (one Arrow conversion per table)."""
    results = list(results)
    counts = np.array([len(r.detections) for r in results], dtype=np.int64)
    track_of = []
    for result in results:
        n = len(result.detections)
        column = np.full(n, -1, dtype=np.int64)
        matched = (result.tracks.det_index >= 0) & (result.tracks.det_index < n)
        column[result.tracks.det_index[matched]] = result.tracks.track_id[matched]
        track_of.append(column)
    frame = _frame_columns(results, counts)
    track_id = _concat(track_of, (0,), np.int64)
    columns = {"camera": frame["camera"], "frame_index": frame["frame_index"], "ts": frame["ts"],
               "det_index": np.concatenate([np.arange(n, dtype=np.int32) for n in counts] or [np.zeros(0, np.int32)]),
               "track_id": pa.array(track_id, mask=track_id < 0),
               **_box_columns(_concat([r.detections.xyxy for r in results], (0, 4), np.float32), frame["frame_size"]),
               "conf": _concat([r.detections.confidence for r in results], (0,), np.float32),
               "class_id": _concat([r.detections.class_id for r in results], (0,), np.int32)}
    return pa.table(columns, schema=DETECTIONS_SCHEMA)


def tracks_table(results: Iterable[CameraFrameResult]) -> pa.Table:
    """One row per confirmed track per frame, with its map position where calibrated."""
    results = list(results)
    counts = np.array([len(r.tracks) for r in results], dtype=np.int64)
    frame = _frame_columns(results, counts)
    map_xy = _concat([r.map_xy for r in results], (0, 2), np.float64)
    columns = {"camera": frame["camera"], "frame_index": frame["frame_index"], "ts": frame["ts"],
               "track_id": _concat([r.tracks.track_id for r in results], (0,), np.int64),
               **_box_columns(_concat([r.tracks.xyxy for r in results], (0, 4), np.float32), frame["frame_size"]),
               "conf": _concat([r.tracks.confidence for r in results], (0,), np.float32),
               "class_id": _concat([r.tracks.class_id for r in results], (0,), np.int32),
               "map_x": pa.array(map_xy[:, 0], from_pandas=True),
               "map_y": pa.array(map_xy[:, 1], from_pandas=True)}
    return pa.table(columns, schema=TRACKS_SCHEMA)


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write to a temporary file beside ``path``, flush it to disk and rename: readers never see a
    partial file, and a failed write (a full disk) leaves the previous file as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        name = (table.schema.metadata or {}).get(b"spoton.table", b"table").decode()
        raise StoreError(f"could not write the {name} Parquet file {path.name}: {exc.strerror or exc}; "
                         "the previous file (if any) is unchanged") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


# The live tick's JSON Schema lives with its builder in spoton.live.tick; exported here beside the tables.
from spoton.live.tick import TICK_JSON_SCHEMA, TickBuilder  # noqa: E402,F401
