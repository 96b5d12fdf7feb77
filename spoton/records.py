"""Core per-frame records: validated parallel arrays, numpy in, numpy out.

Modelled on roboflow/supervision's ``Detections``: one frozen dataclass per
record, shapes checked once at construction, ``empty()`` and ``from_*``
adapters so every consumer (CLI, Dagster assets, live API) sees the same types.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PERSON_CLASS_ID = 0


def _as_array(value, dtype, name: str, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    array = np.ascontiguousarray(value, dtype=dtype)
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        expected = "(N" + "".join(f", {d}" for d in shape_tail) + ")"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    array.setflags(write=False)
    return array


def _check_lengths(n: int, **arrays: np.ndarray | None) -> None:
    for name, array in arrays.items():
        if array is not None and len(array) != n:
            raise ValueError(f"{name} has {len(array)} rows, expected {n} (one per box)")


@dataclass(frozen=True)
class Detections:
    """Boxes found in one frame, in source-frame pixels (x1, y1, x2, y2)."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    embeddings: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _as_array(self.xyxy, np.float32, "xyxy", (4,)))
        object.__setattr__(self, "confidence", _as_array(self.confidence, np.float32, "confidence"))
        object.__setattr__(self, "class_id", _as_array(self.class_id, np.int32, "class_id"))
        if self.embeddings is not None:
            emb = np.ascontiguousarray(self.embeddings, dtype=np.float32)
            if emb.ndim != 2:
                raise ValueError(f"embeddings must have shape (N, D), got {emb.shape}")
            emb.setflags(write=False)
            object.__setattr__(self, "embeddings", emb)
        _check_lengths(len(self.xyxy), confidence=self.confidence, class_id=self.class_id,
                       embeddings=self.embeddings)

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def __getitem__(self, index) -> "Detections":
        """Select rows by boolean mask or integer indices."""
        emb = None if self.embeddings is None else self.embeddings[index]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], emb)

    def with_embeddings(self, embeddings: np.ndarray) -> "Detections":
        return Detections(self.xyxy, self.confidence, self.class_id, embeddings)

    def to_boxmot(self) -> np.ndarray:
        """The (N, 6) array boxmot trackers take: x1, y1, x2, y2, conf, cls."""
        return np.column_stack([self.xyxy, self.confidence, self.class_id]).astype(np.float32)



@dataclass(frozen=True)
class Tracks:
    """Tracked boxes of one frame: detections with a per-camera identity."""

    xyxy: np.ndarray
    track_id: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    det_index: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _as_array(self.xyxy, np.float32, "xyxy", (4,)))
        object.__setattr__(self, "track_id", _as_array(self.track_id, np.int64, "track_id"))
        object.__setattr__(self, "confidence", _as_array(self.confidence, np.float32, "confidence"))
        object.__setattr__(self, "class_id", _as_array(self.class_id, np.int32, "class_id"))
        object.__setattr__(self, "det_index", _as_array(self.det_index, np.int64, "det_index"))
        _check_lengths(len(self.xyxy), track_id=self.track_id, confidence=self.confidence,
                       class_id=self.class_id, det_index=self.det_index)

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> "Tracks":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))

    @classmethod
    def from_boxmot(cls, output: np.ndarray) -> "Tracks":
        """From boxmot's (M, 8) output: x1, y1, x2, y2, id, conf, cls, det_idx."""
        if output is None or len(output) == 0:
            return cls.empty()
        output = np.asarray(output)
        return cls(output[:, 0:4], output[:, 4], output[:, 5], output[:, 6], output[:, 7])


@dataclass(frozen=True)
class CameraFrameResult:
    """Everything the processor learned from one camera's frame at one instant."""

    camera: str
    frame_index: int
    ts: float
    frame_size: tuple[int, int]  # (width, height) of the source frame
    detections: Detections
    tracks: Tracks
    map_xy: np.ndarray  # (len(tracks), 2) metres on the floor plan; NaN without calibration

    def __post_init__(self) -> None:
        object.__setattr__(self, "map_xy", _as_array(self.map_xy, np.float64, "map_xy", (2,)))
        _check_lengths(len(self.tracks), map_xy=self.map_xy)
