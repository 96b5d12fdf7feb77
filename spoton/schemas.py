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
from spoton.store import StoreError

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


def _box_columns(xyxy: np.ndarray, frame_size: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel and normalised box columns; ``frame_size`` is (N, 2) width, height per row."""
    width, height = frame_size[:, 0], frame_size[:, 1]
    return {
        "x1": xyxy[:, 0], "y1": xyxy[:, 1], "x2": xyxy[:, 2], "y2": xyxy[:, 3],
        "bbox_x": xyxy[:, 0] / width, "bbox_y": xyxy[:, 1] / height,
        "bbox_w": (xyxy[:, 2] - xyxy[:, 0]) / width, "bbox_h": (xyxy[:, 3] - xyxy[:, 1]) / height,
    }


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


# The live tick's JSON Schema lives with its builder in spoton.tick; exported here beside the tables.
from spoton.tick import TICK_JSON_SCHEMA, TickBuilder  # noqa: E402,F401
