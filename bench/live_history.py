"""Overhead of live history on a session's tick path: ticks/s with and without the lake writer.

    PYTHONPATH=. .venv/bin/python bench/live_history.py [--ticks 3000] [--rounds 3] [--flush-s 0.5]

Real per-camera results first (the detector and tracker on the sample's frames, three cameras),
then, per tick, what a live session does after inference: the identity gallery, the tick built and
serialised, and (with the writer) ``LiveHistoryWriter.append``, while its background thread turns
buffers into Parquet and writes them to a local store every ``--flush-s`` (shorter than the
default 5 s, to charge more of the writing). Inference is left out, so the ratio is the worst
case: a real session spends ~30 ms per camera frame on the detector besides. Variants alternate
for ``--rounds``; the table gives each one's median ticks/s, the ratio and the cost per tick.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import timeit
from pathlib import Path

from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.live.history import HistoryConfig, LiveHistoryWriter, _Instant, _parquet, live_tables
from spoton.live.identity import LiveIdentityGallery
from spoton.live.tick import TickBuilder, media_timestamp
from spoton.models.detector import build_detector
from spoton.perception.processor import CameraSpec, FrameProcessor
from spoton.storage.lake import ParquetLake
from spoton.storage.store import LocalStore
from spoton.video import iter_frames

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge

CAMERAS = ("c1", "c2", "c3")


def real_results(frames: int) -> list[dict]:
    """Per instant, the three cameras' results on the sample (one video seen as three cameras)."""
    processor = FrameProcessor([CameraSpec(name) for name in CAMERAS], build_detector(threads=1, cache_dir=CACHE))
    return [processor.process({name: frame for name in CAMERAS})
            for frame in iter_frames(fetch_sample_video(CACHE), stop=frames)]


def run(instants: list[dict], ticks: int, writer: LiveHistoryWriter | None) -> float:
    """Ticks per second of the post-inference tick path over ``ticks`` ticks."""
    gallery, builder = LiveIdentityGallery(), TickBuilder("s-bench")
    started = time.perf_counter()
    for k in range(ticks):
        results = instants[k % len(instants)]
        now = time.monotonic()
        ids = gallery.update(results, now)
        if writer is not None:
            wall = time.time()
            writer.append("s-bench", "bench", results, ids, {name: wall for name in results})
        tick = builder.build(results, ids, selected_target_id=None, mode="auto",
                             media_ts={name: media_timestamp(k / 10) for name in results},
                             ts_unix_ms=int(time.time() * 1000), ts_mono_ms=int(now * 1000))
        json.dumps(tick, separators=(",", ":"))
    return ticks / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=40, help="sample frames processed for the results")
    parser.add_argument("--flush-s", type=float, default=0.5)
    args = parser.parse_args()
    instants = real_results(args.frames)
    boxes = sum(len(r.tracks) for instant in instants for r in instant.values()) / len(instants)
    rates: dict[str, list[float]] = {"without writer": [], "with writer": []}
    files = rows = 0
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            rates["without writer"].append(run(instants, args.ticks, None))
            writer = LiveHistoryWriter(LocalStore(Path(folder)), HistoryConfig(flush_interval_s=args.flush_s))
            rates["with writer"].append(run(instants, args.ticks, writer))
            writer.close()
            files, rows = files + writer.stats.files_written, rows + writer.stats.rows_written
        written = len(ParquetLake(LocalStore(Path(folder))).live_keys("camera_tracks"))
    without, with_ = statistics.median(rates["without writer"]), statistics.median(rates["with writer"])
    print(f"{len(CAMERAS)} cameras, {boxes:.1f} tracked boxes per tick, {args.ticks} ticks x {args.rounds} rounds, "
          f"flush every {args.flush_s} s; {files} files ({written} camera_tracks) with {rows} boxes written\n")
    print("| variant | ticks/s (median) | per tick |")
    print("|---|---:|---:|")
    for name, value in (("without writer", without), ("with writer", with_)):
        print(f"| {name} | {value:,.0f} | {1e6 / value:,.0f} µs |")
    print(f"\nratio with/without: {with_ / without:.3f}; writer cost per tick: {1e6 / with_ - 1e6 / without:,.0f} µs")
    # the CPU the background thread spends per tick, alone: columns + Parquet of a flush's instants
    gallery = LiveIdentityGallery()
    batch = [_Instant(r, gallery.update(r, k / 10), {name: 1.7e9 + k / 10 for name in r},
                      sum(len(x.tracks) for x in r.values())) for k, r in enumerate(instants * 10)]
    build = min(timeit.repeat(lambda: [_parquet(t) for t in live_tables("s-bench", "bench", batch).values()],
                              number=1, repeat=5))
    print(f"flush work alone (columns + Parquet of {len(batch)} instants, best of 5): "
          f"{build / len(batch) * 1e6:,.0f} µs per tick")


if __name__ == "__main__":
    main()
