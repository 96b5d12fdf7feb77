"""Where the detector is weak on the sample, and what cheap levers buy: per-camera recall by box
bucket and precision, and the cost per frame, from one run.

    PYTHONPATH=. .venv/bin/python bench/detect_small.py              # every 2nd development frame
    PYTHONPATH=. .venv/bin/python bench/detect_small.py --step 1     # all 400

Each virtual camera's image is rendered from the decoded source frame (``VirtualCamera.warp_image``,
as the sample builder does, without its re-encoding) and scored against that camera's ground truth
(``spoton.sample.ground_truth``: the PETS development annotation warped per camera). A detection
matches a ground-truth box at IoU >= 0.5 (one-to-one, Hungarian per frame). Buckets of the ground
truth, first that applies: *border* (touching the image edge within 2 px), *occluded* (IoU >= 0.3
with another ground-truth box), *small* (height < 100 px: no person of the sample is under ~80 px in
any camera, so this is the far tenth), *other*. Recall and precision are given for every detection
(score >= 0.2, what ByteTrack's second stage sees) and for those >= 0.5 (what starts tracks). Levers
run NanoDet-m 416 (the default detector at its default score threshold) on the detector alone:

- *2 tiles*: the full frame plus its left and right halves (25% overlap), each at the model's
  416x416, merged by NMS: people get ~1.8x the horizontal resolution, at 3 model runs a frame;
  also with the tiles' boxes that touch the tile's inner cut dropped (partial people).
- *border pad*: the frame padded by 32 px (edge pixels repeated) before detection, so that a
  person cut by the edge is not at the model's own border; boxes mapped back and clipped.

Needs the annotation (``../shared/pets``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from orchestration.resources import shared_dir
from spoton.artifacts import fetch_sample_video
from spoton.evaluation.metrics import iou_matrix
from spoton.evaluation.mot import MotBoxes
from spoton.models.detector import DetectorConfig, NanoDetDetector
from spoton.records import Detections
from spoton.sample.builder import load_sample_cameras
from spoton.sample.ground_truth import SOURCE_GT_FRAMES, derive_camera_ground_truth, shared_source_ground_truth
from spoton.video import iter_frames

SMALL_PX = 100.0
OCCLUDED_IOU = 0.3
HIGH_SCORE = 0.5  # ByteTrack's track_thresh (spoton.perception.tracking)
BORDER_PX = 2.0
MATCH_IOU = 0.5
PAD_PX = 32


def merge(parts: list[Detections], config: DetectorConfig) -> Detections:
    """Union of several passes' detections, de-duplicated by the detector's own NMS."""
    xyxy = np.concatenate([p.xyxy for p in parts])
    scores = np.concatenate([p.confidence for p in parts])
    classes = np.concatenate([p.class_id for p in parts])
    if len(scores) == 0:
        return Detections.empty()
    xywh = np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])
    kept = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), config.score_threshold,
                                       config.nms_iou), np.int64).reshape(-1)
    return Detections(xyxy[kept], scores[kept], classes[kept])


def shifted(detections: Detections, dx: float, dy: float, shape: tuple[int, ...]) -> Detections:
    xyxy = detections.xyxy + np.array([dx, dy, dx, dy])
    xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, shape[1])
    xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, shape[0])
    return Detections(xyxy, detections.confidence, detections.class_id)


def two_tiles(detector: NanoDetDetector, frame: np.ndarray, drop_seam: bool = False) -> Detections:
    """Full frame + left and right tiles; ``drop_seam``: a tile's boxes touching its inner cut (a
    person cut by the tile, not by the frame) are dropped, the full frame covers them."""
    width = frame.shape[1]
    tile = int(round(width * 0.625))  # two tiles overlapping by a quarter of the width
    parts = [detector.detect(frame)]
    for left in (0, width - tile):
        found = detector.detect(np.ascontiguousarray(frame[:, left:left + tile]))
        if drop_seam:
            seam = found.xyxy[:, 2] >= tile - BORDER_PX if left == 0 else found.xyxy[:, 0] <= BORDER_PX
            found = Detections(found.xyxy[~seam], found.confidence[~seam], found.class_id[~seam])
        parts.append(shifted(found, left, 0, frame.shape))
    return merge(parts, detector.config)


def border_pad(detector: NanoDetDetector, frame: np.ndarray) -> Detections:
    padded = cv2.copyMakeBorder(frame, PAD_PX, PAD_PX, PAD_PX, PAD_PX, cv2.BORDER_REPLICATE)
    return shifted(detector.detect(padded), -PAD_PX, -PAD_PX, frame.shape)


LEVERS = {"default (1 pass)": lambda detector, frame: detector.detect(frame),
          "2 tiles + full frame": two_tiles,
          "2 tiles + full frame, boxes on a tile's cut dropped": lambda d, f: two_tiles(d, f, drop_seam=True),
          f"border pad {PAD_PX} px (replicate)": border_pad}


def buckets(xyxy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The bucket of each ground-truth box: border, occluded, small or other (first that applies)."""
    width, height = size
    border = ((xyxy[:, 0] <= BORDER_PX) | (xyxy[:, 1] <= BORDER_PX)
              | (xyxy[:, 2] >= width - BORDER_PX) | (xyxy[:, 3] >= height - BORDER_PX))
    iou = iou_matrix(xyxy, xyxy)
    np.fill_diagonal(iou, 0)
    occluded = iou.max(axis=1, initial=0) >= OCCLUDED_IOU
    small = (xyxy[:, 3] - xyxy[:, 1]) < SMALL_PX
    return np.select([border, occluded, small], ["border", "occluded", "small"], "other")


def matched(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per ground-truth box: whether a detection matches it (IoU >= MATCH_IOU, one-to-one)."""
    hit = np.zeros(len(truth), bool)
    if len(truth) and len(found):
        iou = iou_matrix(truth, found)
        rows, cols = linear_sum_assignment(-iou)
        hit[rows[iou[rows, cols] >= MATCH_IOU]] = True
    return hit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", type=Path, default=shared_source_ground_truth(shared_dir()))
    parser.add_argument("--step", type=int, default=2, help="score every STEP-th development frame")
    args = parser.parse_args()
    if args.gt is None:
        print("no ground truth: give --gt or put ../shared/pets beside the repo", file=sys.stderr)
        return 2
    cameras = load_sample_cameras()
    source_gt = MotBoxes.read_mot(args.gt)
    source_gt = source_gt.select(source_gt.frame < SOURCE_GT_FRAMES[1])
    truth = derive_camera_ground_truth(cameras, source_gt)
    detector = NanoDetDetector(config=DetectorConfig(), threads=1)
    wanted = set(range(SOURCE_GT_FRAMES[0], SOURCE_GT_FRAMES[1], args.step))
    names = ("small", "border", "occluded", "other")

    def counter() -> dict:
        """Hits and ground truth per bucket, true and all detections (>= 0.2, >= HIGH_SCORE), seconds, frames."""
        return {"hit": dict.fromkeys(names, 0), "gt": dict.fromkeys(names, 0), "tp": 0, "det": 0,
                "tp_hi": 0, "det_hi": 0, "s": 0.0, "n": 0}

    counters = {lever: {camera.name: counter() for camera in cameras} for lever in LEVERS}
    for frame in iter_frames(fetch_sample_video(), stop=SOURCE_GT_FRAMES[1]):
        index, source = frame.index, frame.image
        if index not in wanted:
            continue
        for camera in cameras:
            if index < camera.start_offset_frames:
                continue
            image = camera.warp_image(source)
            gt = truth[camera.name].select(truth[camera.name].frame == index).xyxy
            kind = buckets(gt, camera.size)
            for lever, run in LEVERS.items():
                start = time.perf_counter()
                detections = run(detector, image)
                seconds = time.perf_counter() - start
                found, high = detections.xyxy, detections.xyxy[detections.confidence >= HIGH_SCORE]
                hit = matched(gt, found)
                c = counters[lever][camera.name]
                for name in names:
                    c["hit"][name] += int(hit[kind == name].sum())
                    c["gt"][name] += int((kind == name).sum())
                c["tp"] += int(hit.sum())
                c["det"] += len(found)
                c["tp_hi"] += int(matched(gt, high).sum())
                c["det_hi"] += len(high)
                c["s"] += seconds
                c["n"] += 1
    print(f"NanoDet-m 416, score >= {DetectorConfig().score_threshold}, every {args.step} development frame(s); "
          f"recall % (hits / ground truth boxes) per bucket, precision % at IoU >= {MATCH_IOU}, ms per camera frame "
          "(1 thread)\n")
    print("| lever | camera | small < 100 px | border-cut | occluded | other | recall | precision "
          f"| recall >= {HIGH_SCORE} | precision >= {HIGH_SCORE} | ms/frame |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for lever, by_camera in counters.items():
        for camera, c in by_camera.items():
            cells = [f"{100 * c['hit'][n] / max(c['gt'][n], 1):.1f} ({c['gt'][n]})" for n in names]
            total = sum(c["gt"].values())
            print(f"| {lever} | {camera} | " + " | ".join(cells)
                  + f" | {100 * c['tp'] / max(total, 1):.1f} | {100 * c['tp'] / max(c['det'], 1):.1f}"
                  f" | {100 * c['tp_hi'] / max(total, 1):.1f} | {100 * c['tp_hi'] / max(c['det_hi'], 1):.1f}"
                  f" | {1000 * c['s'] / max(c['n'], 1):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
