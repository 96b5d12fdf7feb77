"""Tracking speed on the sample video, measured in one run so the ratios are comparable.

    .venv/bin/python bench/track_speed.py [--frames 300]

Rows: decode only; decode + detect; the full `spoton track` path (decode, detect,
track, draw, encode H.264, write Parquet) with ByteTrack (default) and with
BoT-SORT fed by MobileNetV2 embeddings (adds embedding every box).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.models.detector import NanoDetDetector
from spoton.perception.config import PerceptionConfig
from spoton.pipeline import TrackOptions, track_video
from spoton.video import iter_frames

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge


def _rate(frames: int, seconds: float) -> float:
    return frames / seconds if seconds else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300, help="frames of vtest.avi to process")
    args = parser.parse_args()
    video = fetch_sample_video(CACHE)

    rows: list[tuple[str, float]] = []
    started = time.perf_counter()
    decoded = sum(1 for _ in iter_frames(video, stop=args.frames))
    rows.append(("decode only", _rate(decoded, time.perf_counter() - started)))

    detector = NanoDetDetector(cache_dir=CACHE)
    started = time.perf_counter()
    count = 0
    for frame in iter_frames(video, stop=args.frames):
        detector.detect(frame.image)
        count += 1
    rows.append(("decode + detect (NanoDet-m 416)", _rate(count, time.perf_counter() - started)))

    with tempfile.TemporaryDirectory() as out:
        for label, tracker in (("spoton track (ByteTrack)", "bytetrack"),
                               ("spoton track (BoT-SORT + MobileNetV2 embed)", "botsort")):
            options = TrackOptions(PerceptionConfig(tracker=tracker, cache_dir=CACHE), max_frames=args.frames)
            summary = track_video(video, Path(out) / tracker, options)
            rows.append((label, summary.fps))

    detect_fps = rows[1][1]
    print(f"\nvtest.avi, {args.frames} frames, 768x576, CPU\n")
    print(f"| {'path':<44} | {'frames/s':>8} | {'vs detect-only':>14} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 16}|")
    for label, fps in rows:
        print(f"| {label:<44} | {fps:>8.1f} | {fps / detect_fps:>14.2f} |")


if __name__ == "__main__":
    main()
