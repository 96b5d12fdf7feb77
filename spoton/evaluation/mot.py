"""MOTChallenge text in and out: ``frame,id,left,top,width,height,conf,x,y,z`` (frames 1-based in
the text, 0-based in memory), and boxes from the pipeline's track tables."""
from __future__ import annotations

import io
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable

import numpy as np

from spoton.errors import SpotOnError


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


def boxes_from_tracks(tracks, id_column: str) -> MotBoxes:
    """MotBoxes (frame = ``global_frame``) from a tracks table (pandas) with x1..y2, conf, map_x/y."""
    ids = tracks[id_column]
    if ids.dtype == object:  # string ids (tracklet ids): any stable integer code will do
        ids = ids.astype("category").cat.codes
    return MotBoxes.create(tracks["global_frame"].to_numpy(), ids.to_numpy(),
                           tracks[["x1", "y1", "x2", "y2"]].to_numpy(), tracks["conf"].to_numpy(),
                           tracks[["map_x", "map_y"]].to_numpy(np.float64))
