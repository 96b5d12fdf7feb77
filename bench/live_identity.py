"""Live global ids with and without appearance, on the sample's real view, scored on the PETS ground truth.

One pass over the frames: detect and track once (the session's FrameProcessor on the calibrated
source view), then feed the same results to two live galleries: floor position only (as before),
and appearance plus motion (a MobileNetV2 crop per track every ``--every`` frames, batched, as live
sessions do). Time is the video's (frame k at k / fps), so runs are deterministic.

Printed per gallery: its cost per frame (embedding crops included), the global ids handed out,
mean global ids per ground-truth person (1.0 is ideal), the person's *re-entries* (a tracker track
new to that person after an earlier one: back from an occlusion, or an id switch) that got one of
the person's earlier global ids back, and the global ids given to two or more people (wrong merges).

    PYTHONPATH=. .venv/bin/python bench/live_identity.py            # frames 0..399, a crop every 5 frames
    PYTHONPATH=. .venv/bin/python bench/live_identity.py --every 3
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from spoton.evaluation.mot import MotBoxes
from spoton.follow.follower import iou_matrix
from spoton.live.identity import LIVE_CROP_SIZE, AppearanceSampler, LiveIdentityGallery
from spoton.models.embedder import build_embedder
from spoton.perception.config import PerceptionConfig
from spoton.perception.processor import CameraSpec
from spoton.video import iter_frames
from spoton.artifacts import cache_dir_from

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge

REPO_ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = REPO_ROOT / "data" / "calibration" / "pets_s2l1_view_001.json"
DEFAULT_GT = "pets/gt_view1_frames0000-0399.txt"
FPS = 7.0
CAMERA = "view_001"


class Score:
    """Per gallery: which global id each ground-truth person had, frame by frame."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.person_ids: dict[int, list[tuple[int, int]]] = defaultdict(list)  # person -> [(track id, global id)]

    def add(self, truth_ids: np.ndarray, track_rows: np.ndarray, track_ids: np.ndarray, global_ids: np.ndarray) -> None:
        for person, row in zip(truth_ids, track_rows):
            if row >= 0:
                self.person_ids[int(person)].append((int(track_ids[row]), int(global_ids[row])))

    def summary(self) -> dict:
        per_person = [len({g for _, g in seen}) for seen in self.person_ids.values()]
        kept = changed = 0
        for seen in self.person_ids.values():
            tracks, globals_before = set(), set()
            for track, global_id in seen:
                if tracks and track not in tracks:
                    changed += 1
                    kept += global_id in globals_before
                tracks.add(track)
                globals_before.add(global_id)
        owners: dict[int, Counter] = defaultdict(Counter)
        for person, seen in self.person_ids.items():
            for _, global_id in seen:
                owners[global_id][person] += 1
        merged = sum(1 for people in owners.values() if sum(n >= 3 for n in people.values()) >= 2)
        return {"ids": len(owners), "per_person": float(np.mean(per_person)) if per_person else 0.0,
                "kept": kept, "changed": changed, "merged": merged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--every", type=int, default=5, help="a crop per track every N frames")
    parser.add_argument("--gt", type=Path, default=None)
    args = parser.parse_args()
    from spoton.artifacts import fetch_sample_video

    gt = MotBoxes.read_mot(args.gt or Path(os.environ.get("SPOTON_SHARED", REPO_ROOT.parent / "shared")) / DEFAULT_GT)
    perception = PerceptionConfig(threads=1, cache_dir=CACHE)
    processor = perception.build_processor([CameraSpec.from_calibration(CAMERA, CALIBRATION)], FPS)
    sampler = AppearanceSampler(build_embedder(threads=1, crop_size=LIVE_CROP_SIZE, cache_dir=CACHE),
                                every_n_frames=args.every)
    galleries = {"position only": LiveIdentityGallery(), "appearance + motion": LiveIdentityGallery()}
    scores = {name: Score() for name in galleries}
    processing = 0.0
    for frame in iter_frames(fetch_sample_video(CACHE), stop=args.frames):
        started = time.perf_counter()
        results = processor.process({CAMERA: frame})
        processing += time.perf_counter() - started
        now = frame.index / FPS
        tracks = results[CAMERA].tracks
        truth = gt.frame == frame.index
        overlap = iou_matrix(gt.xyxy[truth], tracks.xyxy) if len(tracks.xyxy) else np.zeros((truth.sum(), 0))
        rows = np.where(overlap.max(axis=1, initial=0) >= 0.5, overlap.argmax(axis=1) if overlap.shape[1] else -1, -1)
        for name, gallery in galleries.items():
            started = time.perf_counter()
            embeddings = sampler.sample(results, {CAMERA: frame.image}) if name != "position only" else None
            ids = gallery.update(results, now, embeddings)
            scores[name].seconds += time.perf_counter() - started
            scores[name].add(gt.ids[truth], rows, tracks.track_id, ids[CAMERA])
    frames = args.frames
    print(f"frames 0..{frames - 1} of the sample's view 1 at {FPS:g} fps; detection + tracking "
          f"{1000 * processing / frames:.1f} ms per frame; appearance: a crop per track every {args.every} frames "
          f"({sampler.crops / frames:.2f} crops per frame)")
    print("| gallery | ms per frame | global ids | ids per person | re-entries that got an earlier id back "
          "| ids given to 2+ people |")
    print("|---|---|---|---|---|---|")
    for name, score in scores.items():
        s = score.summary()
        print(f"| {name} | {1000 * score.seconds / frames:.2f} | {s['ids']} | {s['per_person']:.2f} | "
              f"{s['kept']} / {s['changed']} | {s['merged']} |")
    appearance = galleries["appearance + motion"]
    print(f"re-acquired by appearance: {appearance.reacquired}")


if __name__ == "__main__":
    main()
