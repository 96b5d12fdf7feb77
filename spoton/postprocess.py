"""Offline clean-up of a camera's tracks once the whole sequence is known (batch only).

An online tracker must decide at every frame; a batch job can look both ways. Two standard
passes (as in ByteTrack's and StrongSORT's offline results):

- :func:`interpolate_gaps`: a person missed for a few frames (occlusion, a weak detection) is
  filled in by linear interpolation between the boxes either side, so the identity's track has
  no holes. Interpolated rows are flagged.
- :func:`drop_short_identities`: identities seen for only a few frames are mostly false
  positives (a shadow, a bag, a person's half): removed.

Both work on a pandas table with ``frame``, an id column and ``x1, y1, x2, y2`` (other columns
are carried over; interpolated rows copy the earlier row's non-box values).
:func:`clean_camera_tracks` chains them after re-joining a person's tracklets (stitching with
:mod:`spoton.identity`), which is what ``spoton track`` writes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BOX = ["x1", "y1", "x2", "y2"]


def interpolate_gaps(table: pd.DataFrame, id_column: str, max_gap_frames: int,
                     frame_column: str = "frame") -> pd.DataFrame:
    """Fill holes of at most ``max_gap_frames`` missing frames in each identity's track.

    Adds a boolean ``interpolated`` column (True for the filled rows).
    """
    table = table.assign(interpolated=False) if "interpolated" not in table else table
    if table.empty or max_gap_frames <= 0:
        return table
    table = table.sort_values([id_column, frame_column], kind="mergesort", ignore_index=True)
    frames = table[frame_column].to_numpy(np.int64)
    ids = table[id_column].to_numpy()
    same = ids[1:] == ids[:-1]
    gap = frames[1:] - frames[:-1] - 1
    holes = np.flatnonzero(same & (gap >= 1) & (gap <= max_gap_frames))
    if not len(holes):
        return table
    boxes = table[BOX].to_numpy(np.float64)
    pieces = []
    for k in holes:
        n = int(gap[k])
        weight = (np.arange(1, n + 1) / (n + 1))[:, None]
        filled = table.iloc[np.full(n, k)].copy()
        filled[frame_column] = frames[k] + np.arange(1, n + 1)
        filled[BOX] = boxes[k] * (1 - weight) + boxes[k + 1] * weight
        filled["interpolated"] = True
        pieces.append(filled)
    out = pd.concat([table, *pieces], ignore_index=True)
    return out.sort_values([frame_column, id_column], kind="mergesort", ignore_index=True)


def drop_short_identities(table: pd.DataFrame, id_column: str, min_frames: int) -> pd.DataFrame:
    """Remove identities observed on fewer than ``min_frames`` frames."""
    counts = table.groupby(id_column)[id_column].transform("size")
    return table[counts >= min_frames].reset_index(drop=True)


@dataclass(frozen=True)
class OfflineConfig:
    """The batch clean-up of one camera's tracks (defaults measured in docs/benchmarks.md)."""

    stitch: bool = True  # re-join a person's tracklets after occlusions (spoton.identity)
    max_gap_s: float = 1.0  # interpolate holes up to this long
    min_track_s: float = 1.1  # drop identities seen for less than this

    def gap_frames(self, fps: float) -> int:
        return int(round(self.max_gap_s * fps))

    def min_frames(self, fps: float) -> int:
        return int(np.ceil(self.min_track_s * fps))


def clean_camera_tracks(tracks: pd.DataFrame, fps: float, config: OfflineConfig = OfflineConfig()) -> pd.DataFrame:
    """One camera's online tracks -> offline tracks.

    ``tracks`` has ``frame_index``, ``ts``, ``track_id``, ``x1..y2`` and ``map_x, map_y`` (NaN
    without calibration: stitching then predicts in pixels). The result keeps the tracker's id
    as ``tracker_id``, gives ``track_id`` the stitched id (dense from 1, by first appearance) and
    flags ``interpolated`` rows (their ``ts`` and map position are interpolated too).
    """
    from spoton.identity import resolve_global_identities

    table = tracks.rename(columns={"track_id": "tracker_id"})
    if config.stitch and len(table):
        boxes = table.assign(tracklet_id=table["tracker_id"].astype(str), camera="camera", segment="0")
        empty = pd.DataFrame({"tracklet_id": pd.Series(dtype=object), "embedding": pd.Series(dtype=object)})
        assignments = resolve_global_identities(boxes, empty).assignments
        table = boxes.merge(assignments, on="tracklet_id").drop(columns=["tracklet_id", "camera", "segment"])
        table = table.rename(columns={"global_id": "track_id"})
    else:
        table = table.assign(track_id=table["tracker_id"])
    table = interpolate_gaps(table, "track_id", config.gap_frames(fps), frame_column="frame_index")
    if len(table) and table["interpolated"].any():
        filled = table["interpolated"].to_numpy()
        table.loc[filled, "ts"] = table.loc[filled, "frame_index"] / fps
        table.loc[filled, ["map_x", "map_y"]] = np.nan  # rows are in frame order: fill between neighbours
        for column in ("map_x", "map_y"):
            table[column] = table.groupby("track_id")[column].transform(
                lambda values: values.interpolate(limit_area="inside"))
    return drop_short_identities(table, "track_id", config.min_frames(fps))
