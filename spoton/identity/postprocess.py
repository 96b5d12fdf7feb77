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
:func:`clean_camera_tracks` chains them after re-deciding who leaves each crossing as whom
(:mod:`spoton.identity.crossings`) and re-joining a person's tracklets (stitching with
:mod:`spoton.identity.resolver`), which is what ``spoton track`` writes.

Before identities are resolved, the pipeline cuts each camera's tracks into short tracklets
(:func:`tracklet_pieces`): at re-acquisitions and every 2 s, so that a tracker's swap between two
people is a boundary the cross-camera identity resolution can see, not a mix inside one tracklet.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spoton.identity.crossings import CrossingConfig, Embed, resolve_crossings
from spoton.storage.schemas import CAMERA_TRACKS

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


def tracklet_pieces(track_ids: np.ndarray, frames: np.ndarray, min_missed_frames: int | None,
                    max_piece_frames: int | None) -> np.ndarray:
    """Piece number (0, 1, ...) of each row within its track, for cutting tracks into tracklets.

    A new piece starts
    - where the tracker lost the track for at least ``min_missed_frames`` processed frames and
      took it up again: after a few missed frames its motion prediction has drifted and it may take
      up the person walking beside the one it lost; and
    - every ``max_piece_frames`` frames into a piece: a tracker also hands a track to a neighbour
      without missing a frame, and short pieces let the evidence of the other cameras (co-visible
      people, cannot-links) fall on the right side of such a switch.
    The offline identity resolution (:mod:`spoton.identity.resolver`) re-joins the pieces of one person from
    geometry, appearance and the other cameras. ``frames`` counts processed frames (consecutive
    processed frames differ by 1); None switches a rule off.
    """
    track_ids, frames = np.asarray(track_ids), np.asarray(frames, np.int64)
    order = np.lexsort((frames, track_ids))
    f = frames[order]
    same = np.r_[False, track_ids[order][1:] == track_ids[order][:-1]]
    cut = ~same
    if min_missed_frames is not None:
        cut |= np.r_[0, np.diff(f)] > min_missed_frames
    if max_piece_frames is not None:
        piece_start = f[np.maximum.accumulate(np.where(cut, np.arange(len(f)), 0))]
        window = (f - piece_start) // max_piece_frames
        cut |= np.r_[0, np.diff(window)] > 0
    cuts = np.cumsum(cut)
    piece_sorted = cuts - np.maximum.accumulate(np.where(same, 0, cuts))  # cuts since the track began
    pieces = np.empty(len(order), np.int64)
    pieces[order] = piece_sorted
    return pieces


@dataclass(frozen=True)
class TrackletCut:
    """How the pipeline cuts a camera's tracks into tracklets (see :func:`tracklet_pieces`; None
    switches a rule off). Defaults measured on the sample environment (docs/benchmarks.md)."""

    split_after_missed_frames: int | None = 2
    max_tracklet_s: float | None = 2.0

    def tracklet_ids(self, cameras, segments, track_ids, frames, frame_rate: float) -> list[str]:
        """``camera/segment/track_id`` per row, with ``.piece`` after a track's first piece.

        ``frames`` counts processed frames at ``frame_rate`` frames per second.
        """
        keys = [f"{c}/{s}/{t}" for c, s, t in zip(cameras, segments, track_ids)]
        max_frames = None if self.max_tracklet_s is None else max(1, round(self.max_tracklet_s * frame_rate))
        pieces = tracklet_pieces(np.array(keys), frames, self.split_after_missed_frames, max_frames)
        return [k + (f".{p}" if p else "") for k, p in zip(keys, pieces.tolist())]


def drop_short_identities(table: pd.DataFrame, id_column: str, min_frames: int) -> pd.DataFrame:
    """Remove identities observed on fewer than ``min_frames`` frames."""
    counts = table.groupby(id_column)[id_column].transform("size")
    return table[counts >= min_frames].reset_index(drop=True)


@dataclass(frozen=True)
class OfflineConfig:
    """The batch clean-up of one camera's tracks (defaults measured in docs/benchmarks.md)."""

    stitch: bool = True  # re-join a person's tracklets after occlusions (spoton.identity.resolver)
    stitch_max_gap_s: float = 4.0  # one camera, no appearance: longer gaps join more wrongly (5 s: IDF1 -0.4)
    max_gap_s: float = 1.5  # interpolate holes up to this long
    min_track_s: float = 2.0  # drop identities seen for less than this
    # re-decide who leaves a crossing as whom before stitching (spoton.identity.crossings); None: the
    # tracker's answer (docs/benchmarks.md: single-camera IDF1 +5.2 in the worst cell, no cell worse)
    crossings: CrossingConfig | None = field(default_factory=CrossingConfig)
    # the pipeline's final tracks (clean_environment_tracks): where every box of an identity at an instant is
    # this close to its view's left, right or bottom border (fraction of the frame), they keep no map
    # position; None: every box keeps it
    partial_view_margin: float | None = 0.01

    def __post_init__(self):
        if self.partial_view_margin is not None and not 0 <= self.partial_view_margin < 0.5:
            raise ValueError(f"OfflineConfig.partial_view_margin is a fraction of the frame in [0, 0.5) or None "
                             f"(every box keeps its map position), got {self.partial_view_margin!r}")

    def gap_frames(self, fps: float) -> int:
        return int(round(self.max_gap_s * fps))

    def min_frames(self, fps: float) -> int:
        return int(np.ceil(self.min_track_s * fps))


def fill_and_prune(table: pd.DataFrame, id_column: str, frame_column: str, frame_rate: float,
                   config: OfflineConfig = OfflineConfig()) -> pd.DataFrame:
    """Interpolate each identity's holes and drop fleeting identities.

    ``frame_column`` counts processed frames at ``frame_rate``; filled rows get ``ts`` and
    ``map_x, map_y`` interpolated between their neighbours (all linear in time over a short hole).
    """
    table = interpolate_gaps(table, id_column, config.gap_frames(frame_rate), frame_column=frame_column)
    filled = table["interpolated"].to_numpy()
    if filled.any():
        columns = [c for c in ("ts", "map_x", "map_y") if c in table]
        table.loc[filled, columns] = np.nan  # rows are in frame order: fill between neighbours
        for column in columns:
            table[column] = table.groupby(id_column)[column].transform(
                lambda values: values.interpolate(limit_area="inside"))
    return drop_short_identities(table, id_column, config.min_frames(frame_rate))


def clean_camera_tracks(tracks: pd.DataFrame, fps: float, config: OfflineConfig = OfflineConfig(),
                        embed: Embed | None = None) -> pd.DataFrame:
    """One camera's online tracks (a ``spoton track`` run) -> offline tracks.

    ``tracks`` has ``frame_index``, ``ts``, ``track_id``, ``x1..y2`` and ``map_x, map_y`` (NaN
    without calibration: stitching then predicts in pixels). The result keeps the tracker's id
    (after ``config.crossings``' corrections, which weigh appearance where ``embed`` is given) as
    ``tracker_id``, gives ``track_id`` the stitched id (dense from 1, by first appearance) and flags
    ``interpolated`` rows.
    """
    from spoton.identity.resolver import IdentityConfig, resolve_global_identities

    if config.crossings is not None and len(tracks):
        tracks = tracks.reset_index(drop=True)
        tracks = tracks.assign(track_id=resolve_crossings(tracks, config.crossings, embed, frame_rate=fps)[0])
    table = tracks.rename(columns={"track_id": "tracker_id"})
    if config.stitch and len(table):
        boxes = table.assign(tracklet_id=table["tracker_id"].astype(str), camera="camera", segment="0")
        empty = pd.DataFrame({"tracklet_id": pd.Series(dtype=object), "embedding": pd.Series(dtype=object)})
        # the resolver's repair of blocked merges was measured on the environment's identities only
        stitching = IdentityConfig(max_gap_s=config.stitch_max_gap_s, repair_min_gain=None)
        assignments = resolve_global_identities(boxes, empty, stitching).assignments
        table = boxes.merge(assignments, on="tracklet_id").drop(columns=["tracklet_id", "camera", "segment"])
        table = table.rename(columns={"global_id": "track_id"})
    else:
        table = table.assign(track_id=table["tracker_id"])
    return fill_and_prune(table, "track_id", "frame_index", fps, config)


def cut_by_view(boxes: pd.DataFrame, margin: float) -> np.ndarray:
    """Per row: the box reaches within ``margin`` (a fraction of the frame) of the left, right or
    bottom border of its view, from the normalised ``bbox_*`` columns (all False without them).

    Such a box holds only the part of a person inside the view: its bottom centre is not their
    foot point (cut at the bottom: the feet are outside; at a side: the centre of the visible
    part). The top border is not tested: a cut head leaves the feet where they are."""
    if not {"bbox_x", "bbox_y", "bbox_w", "bbox_h"} <= set(boxes.columns):
        return np.zeros(len(boxes), bool)
    left = boxes["bbox_x"].to_numpy(np.float64)
    right = left + boxes["bbox_w"].to_numpy(np.float64)
    bottom = boxes["bbox_y"].to_numpy(np.float64) + boxes["bbox_h"].to_numpy(np.float64)
    return (left <= margin) | (right >= 1 - margin) | (bottom >= 1 - margin)


def clean_environment_tracks(boxes: pd.DataFrame, frame_step: int, fps: float,
                             config: OfflineConfig = OfflineConfig()) -> pd.DataFrame:
    """Every camera's boxes with their global ids -> the final per-camera tracks.

    ``boxes``: tracklet rows (camera, global_frame, ts, x1..y2, conf, map_x, map_y, tracklet_id,
    and the normalised ``bbox_*`` columns where known) with ``global_id``; frames were processed
    every ``frame_step`` environment frames at ``fps``. Each camera's view of an identity gets its
    holes filled and is dropped when fleeting. At an instant where every box of an identity is cut
    by its view's border (:func:`cut_by_view` within ``config.partial_view_margin``; an
    interpolated box takes the flag of the box before its hole), those boxes keep their place in
    the camera tracks but lose their map positions: no camera sees the person whole, so the floor
    does not place them (people entering or leaving the covered area; on the sample these were
    most floor positions that matched nobody, docs/benchmarks.md). Where another camera sees them
    whole, the cut box still takes part in the fused position.
    """
    if boxes.empty:
        return CAMERA_TRACKS.empty_frame()
    margin = config.partial_view_margin
    boxes = boxes.assign(cut_by_view=cut_by_view(boxes, margin) if margin is not None else False)
    parts = []
    for camera, rows in boxes.groupby("camera", sort=True):
        # frames are kept where global_frame % frame_step == 0 (one grid for every camera)
        rows = rows[[c for c in CAMERA_TRACKS.names if c != "interpolated"] + ["cut_by_view"]].assign(
            step=rows["global_frame"] // frame_step)
        rows = fill_and_prune(rows, "global_id", "step", fps / frame_step, config)
        parts.append(rows.assign(global_frame=rows["step"] * frame_step, camera=camera))
    out = pd.concat(parts, ignore_index=True)
    partial = out.groupby(["global_id", "global_frame"])["cut_by_view"].transform("all").to_numpy(bool)
    out.loc[partial, ["map_x", "map_y"]] = np.nan
    out = out[CAMERA_TRACKS.names]
    return out.sort_values(["camera", "global_frame", "global_id"], ignore_index=True)
