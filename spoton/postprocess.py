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
"""
from __future__ import annotations

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
