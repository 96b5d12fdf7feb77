"""Tracking experiments on the development split (vtest frames 0..399 vs the PETS annotation).

Detections (and, for appearance trackers, embeddings) are computed once per detector setting and
cached, so tracker settings can be compared in seconds. Each row is one experiment: detector
setting, tracker and its parameters, the offline stitching pass; scored with TrackEval.

    .venv/bin/python bench/tune_tracking.py                       # the experiments below
    .venv/bin/python bench/tune_tracking.py --gt PATH --frames 400

Needs the annotation (``../shared/pets/gt_view1_frames0000-0399.txt`` or --gt).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from orchestration.resources import shared_dir
from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.evaluation.metrics import evaluate_sequence
from spoton.evaluation.mot import MotBoxes
from spoton.evaluation.report import metrics_table
from spoton.models.detector import DetectorConfig, build_detector
from spoton.identity.postprocess import drop_short_identities, interpolate_gaps
from spoton.records import Detections
from spoton.sample.ground_truth import shared_source_ground_truth
from spoton.perception.tracking import Tracker, TrackerConfig
from spoton.video import iter_frames

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge

FPS = 7.0
POST = {"botsort", "botsort buffer 90", "thresh 0.5 buffer 90", "match 0.9 buffer 90"}


def load_frames(count: int) -> list[np.ndarray]:
    return [frame.image for frame in iter_frames(fetch_sample_video(CACHE), stop=count)]


def cached_detections(frames: list[np.ndarray], config: DetectorConfig, embed: bool) -> list[Detections]:
    key = hashlib.sha1(json.dumps([config.__dict__, len(frames), embed], sort_keys=True).encode()).hexdigest()[:12]
    path = CACHE / "tuning" / f"detections-{key}.npz"
    if path.is_file():
        data = np.load(path)
        out = []
        for i in range(len(frames)):
            rows = data["frame"] == i
            out.append(Detections(data["xyxy"][rows], data["conf"][rows], np.zeros(rows.sum()),
                                  data["emb"][rows] if embed else None))
        return out
    detector = build_detector("nanodet", config=config, threads=1, cache_dir=CACHE)
    embedder = None
    if embed:
        from spoton.models.embedder import build_embedder

        embedder = build_embedder(cache_dir=CACHE)
    out = []
    for image in frames:
        detections = detector.detect(image)
        if embedder is not None:
            detections = detections.with_embeddings(embedder.embed(image, detections.xyxy) if len(detections)
                                                    else np.zeros((0, embedder.dim), np.float32))
        out.append(detections)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, frame=np.concatenate([np.full(len(d), i) for i, d in enumerate(out)]),
             xyxy=np.concatenate([d.xyxy for d in out]), conf=np.concatenate([d.confidence for d in out]),
             emb=np.concatenate([d.embeddings for d in out]) if embed else np.zeros(0))
    return out


def run_tracker(frames, detections, config: TrackerConfig):
    """Tracks as a pandas table (frame, track_id, x1..y2, conf, det_index) plus each row's embedding."""
    import pandas as pd

    tracker = Tracker(config)
    rows, embeddings = [], []
    for i, (image, dets) in enumerate(zip(frames, detections)):
        tracks = tracker.update(dets, image)
        for box, tid, conf, det in zip(tracks.xyxy, tracks.track_id, tracks.confidence, tracks.det_index):
            rows.append((i, tid, *box, conf))
            embeddings.append(dets.embeddings[int(det)] if dets.embeddings is not None else None)
    table = pd.DataFrame(rows, columns=["frame", "track_id", "x1", "y1", "x2", "y2", "conf"])
    return table, embeddings


def to_boxes(table, id_column="track_id") -> MotBoxes:
    return MotBoxes.create(table["frame"], table[id_column], table[["x1", "y1", "x2", "y2"]].to_numpy(),
                           table["conf"])


def stitch(table, embeddings, config=None):
    """Offline identity resolution on one camera's tracklets (map positions from the real calibration)."""
    import pandas as pd

    from spoton.identity.resolver import IdentityConfig, resolve_global_identities
    from spoton.sample.builder import TSAI_XML
    from spoton.tsai import TsaiCamera

    tsai = TsaiCamera.from_xml(TSAI_XML)
    foot = np.column_stack([(table["x1"] + table["x2"]) / 2, table["y2"]])
    map_xy = tsai.image_to_ground(foot) / 1000.0
    boxes = table.assign(tracklet_id=table["track_id"].astype(str), camera="cam", segment="00",
                         ts=table["frame"] / FPS, map_x=map_xy[:, 0], map_y=map_xy[:, 1])
    vectors = pd.DataFrame({"tracklet_id": boxes["tracklet_id"], "embedding": embeddings})
    vectors = vectors.dropna().groupby("tracklet_id")["embedding"].apply(lambda v: np.mean(np.stack(list(v)), axis=0))
    result = resolve_global_identities(boxes, vectors.reset_index(), config or IdentityConfig())
    return boxes.merge(result.assignments, on="tracklet_id")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", type=Path, default=shared_source_ground_truth(shared_dir()))
    parser.add_argument("--frames", type=int, default=400)
    args = parser.parse_args()
    if args.gt is None:
        print("no ground truth: give --gt or put ../shared/pets beside the repo", file=sys.stderr)
        return 2
    gt = MotBoxes.read_mot(args.gt)
    gt = gt.select(gt.frame < args.frames)
    frames = load_frames(args.frames)
    scored = np.arange(args.frames)

    base = DetectorConfig()  # score >= 0.2; higher thresholds filter these
    bt = dict(track_thresh=0.45, match_thresh=0.8, track_buffer=30, min_conf=0.1)
    experiments = {
        "bytetrack defaults": (base, TrackerConfig("bytetrack", FPS), 0.2),
        "bytetrack score>=0.3": (base, TrackerConfig("bytetrack", FPS), 0.3),
        "bytetrack score>=0.4": (base, TrackerConfig("bytetrack", FPS), 0.4),
        "buffer 90": (base, TrackerConfig("bytetrack", FPS, {**bt, "track_buffer": 90}), 0.2),
        "thresh 0.5 buffer 90": (base, TrackerConfig("bytetrack", FPS, {**bt, "track_thresh": 0.5, "track_buffer": 90}), 0.2),
        "thresh 0.35 buffer 90": (base, TrackerConfig("bytetrack", FPS, {**bt, "track_thresh": 0.35, "track_buffer": 90}), 0.2),
        "match 0.9 buffer 90": (base, TrackerConfig("bytetrack", FPS, {**bt, "match_thresh": 0.9, "track_buffer": 90}), 0.2),
        "match 0.7 buffer 90": (base, TrackerConfig("bytetrack", FPS, {**bt, "match_thresh": 0.7, "track_buffer": 90}), 0.2),
        "ocsort": (base, TrackerConfig("ocsort", FPS), 0.2),
        "botsort": (base, TrackerConfig("botsort", FPS), 0.2),
        "botsort buffer 90": (base, TrackerConfig("botsort", FPS, {"use_cmc": False, "track_buffer": 90}), 0.2),
        "deepocsort": (base, TrackerConfig("deepocsort", FPS), 0.2),
    }
    results = {}
    for name, (det_config, tracker_config, score) in experiments.items():
        detections = [d[d.confidence >= score] for d in cached_detections(frames, det_config, True)]
        started = time.perf_counter()
        table, embeddings = run_tracker(frames, detections, tracker_config)
        results[name] = evaluate_sequence(gt, to_boxes(table).in_frames(scored), scored)
        if name in POST:
            stitched = stitch(table, embeddings)
            results[name + " + stitch"] = evaluate_sequence(gt, to_boxes(stitched, "global_id"), scored)
            for gap in (3, 7, 14):
                filled = interpolate_gaps(stitched, "global_id", gap)
                results[f"{name} + stitch + interp {gap}"] = evaluate_sequence(gt, to_boxes(filled, "global_id"), scored)
                for short in (4, 8):
                    kept = drop_short_identities(filled, "global_id", short)
                    results[f"{name} + stitch + interp {gap} + min {short}"] = evaluate_sequence(
                        gt, to_boxes(kept, "global_id"), scored)
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(metrics_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
