"""How robust `spoton track`'s offline pass is: variants scored over a range of detector score
thresholds on the development split (vtest frames 0..399 vs the PETS annotation).

    .venv/bin/python bench/tune_offline.py                 # every variant below
    .venv/bin/python bench/tune_offline.py interaction     # only variants whose name contains it
    .venv/bin/python bench/tune_offline.py default --precision int8   # NanoDet's INT8 copy

The online tracks (`spoton track --online-only --calibration ...` at each threshold) are computed
once and cached; each variant then re-runs only the offline pass (cutting, stitching with
`spoton.identity.resolver`, holes filled, short identities dropped), so a row costs seconds. Cells are
MOTA / IDF1 / HOTA / ID switches. Needs the annotation (``../shared/pets``).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from spoton.perception.appearance import CROPS_PER_TRACKLET, embed_tracklets
from orchestration.resources import shared_dir
from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.evaluation.metrics import evaluate_sequence, iou_matrix
from spoton.evaluation.mot import MotBoxes, boxes_from_tracks
from spoton.identity.resolver import IdentityConfig, resolve_global_identities
from spoton.models.detector import DetectorConfig
from spoton.perception.config import PerceptionConfig
from spoton.pipeline import TrackOptions, track_video
from spoton.identity.crossings import CrossingConfig, resolve_crossings
from spoton.identity.phantoms import resolve_people
from spoton.identity.postprocess import OfflineConfig, fill_and_prune, tracklet_pieces
from spoton.sample.ground_truth import shared_source_ground_truth
from spoton.video import iter_frames

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge

CALIBRATION = Path(__file__).resolve().parents[1] / "data" / "calibration" / "pets_s2l1_view_001.json"
THRESHOLDS = (0.18, 0.19, 0.20, 0.21, 0.22, 0.25)
FPS = 7.0
STITCH = IdentityConfig(max_gap_s=OfflineConfig().stitch_max_gap_s)  # what clean_camera_tracks uses


def online_tracks(threshold: float, frames: int, precision: str = "fp32") -> pd.DataFrame:
    """`spoton track --online-only` at ``threshold`` with the detector in ``precision`` (cached)."""
    out = CACHE / "tuning" / f"online-{threshold:.2f}-{frames}{'' if precision == 'fp32' else '-' + precision}"
    if not (out / "tracks.parquet").is_file():
        perception = PerceptionConfig(detector_config=DetectorConfig(score_threshold=threshold),
                                      detector_precision=precision, cache_dir=CACHE)
        options = TrackOptions(perception, max_frames=frames, calibration=CALIBRATION, write_video=False, offline=None)
        track_video(fetch_sample_video(CACHE), out, options)
    return pd.read_parquet(out / "tracks.parquet")


def interaction_pieces(tracks: pd.DataFrame, min_iou: float) -> np.ndarray:
    """Piece number per row: a track starts a new piece after each run of frames in which its box
    overlaps another track's by ``min_iou`` (where a tracker swaps people, if it does)."""
    overlapping = np.zeros(len(tracks), bool)
    for rows in tracks.groupby("frame_index").indices.values():
        if len(rows) > 1:
            iou = iou_matrix(*(2 * [tracks[["x1", "y1", "x2", "y2"]].to_numpy()[rows]]))
            np.fill_diagonal(iou, 0)
            overlapping[rows] = iou.max(axis=1) >= min_iou
    ids = tracks["tracker_id"].to_numpy()
    order = np.lexsort((tracks["frame_index"].to_numpy(), ids))
    same = np.r_[False, ids[order][1:] == ids[order][:-1]]
    run = overlapping[order]
    ends = same & np.r_[False, run[:-1] & ~run[1:]]  # the first frame after an overlapping run
    cuts = np.cumsum(ends)
    pieces = np.empty(len(tracks), np.int64)
    pieces[order] = cuts - np.maximum.accumulate(np.where(same, 0, cuts))  # cuts since the track began
    return pieces


def offline_pass(online: pd.DataFrame, frames: list, embedder, *, interaction_iou: float | None = None,
                 missed: int | None = None, max_piece_frames: int | None = None, appearance: bool = False,
                 stitch: IdentityConfig = STITCH, static: bool = False,
                 crossings: CrossingConfig | None = OfflineConfig().crossings,
                 crossing_appearance: bool = True) -> pd.DataFrame:
    """`clean_camera_tracks` with the tracks optionally cut into pieces and the pieces given appearance,
    and (``static``) static identities dropped as the pipeline's ``global_identities`` does.
    ``crossings``: swaps at crossings re-decided first (`spoton.identity.crossings`; the default's,
    None: the tracker's), with the crops' appearance unless ``crossing_appearance`` is False."""
    online = online.reset_index(drop=True)
    if crossings is not None:
        embed = ((lambda crops: embed_tracklets(crops, lambda camera, stop: iter(frames[:stop]), embedder,
                                                crossings.crops)[0]) if crossing_appearance else None)
        online = online.assign(track_id=resolve_crossings(online, crossings, embed, frame_rate=FPS)[0])
    table = online.rename(columns={"track_id": "tracker_id"}).reset_index(drop=True)
    piece = np.zeros(len(table), np.int64)
    if interaction_iou is not None:
        piece = interaction_pieces(table, interaction_iou)
    keys = table["tracker_id"].astype(str) + "." + pd.Series(piece).astype(str)
    if missed is not None or max_piece_frames is not None:
        keys = keys + "." + pd.Series(tracklet_pieces(keys.to_numpy(), table["frame_index"].to_numpy(),
                                                      missed, max_piece_frames)).astype(str)
    boxes = table.assign(tracklet_id=keys, camera="cam", segment="0")
    vectors = pd.DataFrame({"tracklet_id": pd.Series(dtype=object), "embedding": pd.Series(dtype=object)})
    if appearance:
        means, _ = embed_tracklets(boxes, lambda camera, stop: iter(frames[:stop]), embedder, CROPS_PER_TRACKLET)
        vectors = pd.DataFrame({"tracklet_id": list(means), "embedding": list(means.values())})
    if static:
        assignments = resolve_people(boxes.assign(track_id=boxes["tracker_id"]), vectors, stitch)[0].assignments
    else:
        assignments = resolve_global_identities(boxes, vectors, stitch).assignments
    stitched = boxes.merge(assignments, on="tracklet_id").rename(columns={"global_id": "track_id"})
    return fill_and_prune(stitched.drop(columns=["tracklet_id", "camera", "segment"]), "track_id",
                          "frame_index", FPS, OfflineConfig())


VARIANTS = {
    "default (crossings re-decided, no cut, geometry only)": {},
    "crossings left to the tracker (the default until 2026-12-03)": dict(crossings=None),
    "crossings re-decided by motion only": dict(crossing_appearance=False),
    "without the view-border rule (before)": dict(stitch=replace(STITCH, view_edge_min_gap_s=float("inf"))),
    "stitching min_score 0.3 -> 0.6": dict(stitch=replace(STITCH, min_score=0.6)),
    "tracks given appearance (4 crops), no cut": dict(appearance=True),
    "2 s pieces + appearance": dict(max_piece_frames=14, appearance=True),
    "interaction cut (IoU >= 0.3), geometry only": dict(interaction_iou=0.3),
    "interaction cut (IoU >= 0.1) + appearance": dict(interaction_iou=0.1, appearance=True),
    "interaction cut (IoU >= 0.3) + appearance": dict(interaction_iou=0.3, appearance=True),
    "interaction cut (IoU >= 0.3) + re-acquisition cut + appearance": dict(interaction_iou=0.3, missed=2,
                                                                           appearance=True),
    "same, appearance_weight 12 -> 4": dict(interaction_iou=0.3, missed=2, appearance=True,
                                            stitch=replace(STITCH, appearance_weight=4.0)),
    "static identities dropped (spoton.identity.phantoms)": dict(static=True),
    "optimal clustering (correlation clustering MILP)": dict(stitch=replace(STITCH, clustering="optimal")),
    "2 s pieces + appearance, optimal clustering": dict(max_piece_frames=14, appearance=True,
                                                        stitch=replace(STITCH, clustering="optimal")),
    "crossings: overlaps only (no occlusion events)": dict(crossings=CrossingConfig(lost_overlap=None)),
    "crossings: assignment margin 0.5 -> 0.2": dict(crossings=CrossingConfig(margin=0.2)),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="run only variants whose name contains one of these")
    parser.add_argument("--gt", type=Path, default=shared_source_ground_truth(shared_dir()))
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="NanoDet's weights")
    args = parser.parse_args()
    if args.gt is None:
        print("no ground truth: give --gt or put ../shared/pets beside the repo", file=sys.stderr)
        return 2
    from spoton.models.embedder import build_embedder

    gt = MotBoxes.read_mot(args.gt)
    scored = np.arange(args.frames)
    gt = gt.in_frames(scored)
    online = {threshold: online_tracks(threshold, args.frames, args.precision) for threshold in THRESHOLDS}
    frames = list(iter_frames(fetch_sample_video(CACHE), stop=args.frames))
    embedder = build_embedder(cache_dir=CACHE)
    print("| offline pass | " + " | ".join(f"score >= {t:.2f}" for t in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for name, variant in VARIANTS.items():
        if args.only and not any(word in name for word in args.only):
            continue
        cells = []
        for threshold in THRESHOLDS:
            tracks = offline_pass(online[threshold], frames, embedder, **variant)
            pred = boxes_from_tracks(tracks.rename(columns={"frame_index": "global_frame"}), "track_id")
            m = evaluate_sequence(gt, pred.in_frames(scored), scored)
            cells.append(f"{100 * m.mota:.1f} / {100 * m.idf1:.1f} / {100 * m.hota:.1f} / {m.id_switches}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
