"""The one place where table columns are defined: Arrow schemas for every Parquet table.

Batch assets, the CLI and the live API build their tables here, so a column
means the same thing everywhere. Boxes are kept twice: in source-frame pixels
(``x1..y2``) and normalised to [0, 1] of the frame (``bbox_x, bbox_y`` top-left,
``bbox_w, bbox_h``), the same convention as the live tick.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spoton.records import CameraFrameResult

_BOX_FIELDS = [
    pa.field("x1", pa.float32()), pa.field("y1", pa.float32()),
    pa.field("x2", pa.float32()), pa.field("y2", pa.float32()),
    pa.field("bbox_x", pa.float32()), pa.field("bbox_y", pa.float32()),
    pa.field("bbox_w", pa.float32()), pa.field("bbox_h", pa.float32()),
]
_FRAME_FIELDS = [
    pa.field("camera", pa.string(), nullable=False),
    pa.field("frame_index", pa.int64(), nullable=False),
    pa.field("ts", pa.float64(), nullable=False),
]

DETECTIONS_SCHEMA = pa.schema([
    *_FRAME_FIELDS,
    pa.field("det_index", pa.int32(), nullable=False),
    pa.field("track_id", pa.int64()),  # null when the tracker did not confirm this box
    *_BOX_FIELDS,
    pa.field("conf", pa.float32()),
    pa.field("class_id", pa.int32()),
], metadata={"spoton.table": "detections"})

TRACKS_SCHEMA = pa.schema([
    *_FRAME_FIELDS,
    pa.field("track_id", pa.int64(), nullable=False),
    *_BOX_FIELDS,
    pa.field("conf", pa.float32()),
    pa.field("class_id", pa.int32()),
    pa.field("map_x", pa.float64()),  # metres on the floor plan; null without calibration
    pa.field("map_y", pa.float64()),
], metadata={"spoton.table": "tracks"})


def _box_columns(xyxy: np.ndarray, frame_size: tuple[int, int]) -> dict[str, np.ndarray]:
    width, height = frame_size
    return {
        "x1": xyxy[:, 0], "y1": xyxy[:, 1], "x2": xyxy[:, 2], "y2": xyxy[:, 3],
        "bbox_x": xyxy[:, 0] / width, "bbox_y": xyxy[:, 1] / height,
        "bbox_w": (xyxy[:, 2] - xyxy[:, 0]) / width, "bbox_h": (xyxy[:, 3] - xyxy[:, 1]) / height,
    }


def _frame_columns(result: CameraFrameResult, n: int) -> dict[str, object]:
    return {"camera": [result.camera] * n, "frame_index": np.full(n, result.frame_index),
            "ts": np.full(n, result.ts)}


def detections_table(results: Iterable[CameraFrameResult]) -> pa.Table:
    batches = []
    for result in results:
        det = result.detections
        n = len(det)
        track_of = np.full(n, -1, dtype=np.int64)
        matched = (result.tracks.det_index >= 0) & (result.tracks.det_index < n)
        track_of[result.tracks.det_index[matched]] = result.tracks.track_id[matched]
        columns = {**_frame_columns(result, n), "det_index": np.arange(n, dtype=np.int32),
                   "track_id": pa.array(track_of, mask=track_of < 0),
                   **_box_columns(det.xyxy, result.frame_size),
                   "conf": det.confidence, "class_id": det.class_id}
        batches.append(pa.record_batch(columns, schema=DETECTIONS_SCHEMA))
    return pa.Table.from_batches(batches, schema=DETECTIONS_SCHEMA)


def tracks_table(results: Iterable[CameraFrameResult]) -> pa.Table:
    batches = []
    for result in results:
        tracks = result.tracks
        n = len(tracks)
        map_xy = result.map_xy
        columns = {**_frame_columns(result, n), "track_id": tracks.track_id,
                   **_box_columns(tracks.xyxy, result.frame_size),
                   "conf": tracks.confidence, "class_id": tracks.class_id,
                   "map_x": pa.array(map_xy[:, 0], from_pandas=True),
                   "map_y": pa.array(map_xy[:, 1], from_pandas=True)}
        batches.append(pa.record_batch(columns, schema=TRACKS_SCHEMA))
    return pa.Table.from_batches(batches, schema=TRACKS_SCHEMA)


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write to a temporary file beside ``path`` and rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# The live tick's JSON Schema lives with its builder in spoton.tick; exported here beside the tables.
from spoton.tick import TICK_JSON_SCHEMA, TickBuilder  # noqa: E402,F401
