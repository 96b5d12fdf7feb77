"""History REST reads: a lake folder (DuckDB globs it in place) vs an S3 lake (SeaweedFS: the objects read
through the store into Arrow), one run.

Writes ``--minutes`` of one live session (3 cameras, ``--people`` identities, 10 instants a second, one
file per table every 5 s as the live writer does) into a folder and into an S3 lake, then runs the
history routes' query (``apps.live_api.history.trajectory_rows``) ``--rounds`` times per lake, for the
whole session and for its last minute (``from``/``to``), and prints per lake and query the wall and
CPU seconds of the median round, rows, objects listed, and the S3/folder ratios. "s3 + cache" is the
API's cache of decoded live files (cold in the first round only).

    PYTHONPATH=. .venv/bin/python bench/history_s3.py --minutes 10
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from apps.live_api.history import Window, trajectory_rows  # noqa: E402
from orchestration.services import SeaweedServer  # noqa: E402
from spoton.live.history import HistoryConfig, LiveHistoryWriter  # noqa: E402
from spoton.records import CameraFrameResult, Detections, Tracks  # noqa: E402
from apps.live_api.app import LIVE_FILE_CACHE_BYTES  # noqa: E402
from spoton.storage.catalog import LiveFileCache, environment_keys  # noqa: E402
from spoton.storage.lake import ParquetLake  # noqa: E402
from spoton.storage.store import LocalStore, S3Store, s3_client  # noqa: E402

ACCESS, SECRET = "bench-access", "bench-secret-0123456789"
T0 = 1_796_292_000.0  # 2026-12-03 10:00 UTC
CAMERAS = ("view_001", "view_002", "view_003")


def fill(store, minutes: float, people: int) -> None:
    writer = LiveHistoryWriter(store, HistoryConfig(flush_interval_s=3600))
    rng = np.random.default_rng(0)
    n = people
    tracks = Tracks(np.tile([[10.0, 20, 50, 120]], (n, 1)), np.arange(1, n + 1), np.full(n, 0.9), np.zeros(n), np.arange(n))
    per_file = 50  # 5 s at 10 Hz
    for k in range(int(minutes * 600)):
        xy = rng.uniform(-10, 10, (n, 2))
        results = {c: CameraFrameResult(c, k, 0.0, (768, 576), Detections.empty(), tracks, xy) for c in CAMERAS}
        writer.append("s-bench", "env", results, {c: np.arange(1, n + 1) for c in CAMERAS},
                      {c: T0 + k / 10 for c in CAMERAS})
        if (k + 1) % per_file == 0:
            writer.flush()
    writer.close()


def timed(lake: ParquetLake, span: Window, rounds: int, cache: LiveFileCache | None) -> tuple[float, float, int]:
    walls, cpus, rows = [], [], 0
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        rows = len(trajectory_rows(lake, "env", span, source="live", session_id="s-bench", cache=cache))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        server = SeaweedServer(Path(work) / "seaweed", ACCESS, SECRET).start()
        try:
            client = s3_client(endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS,
                               aws_secret_access_key=SECRET)
            s3 = S3Store(client, "bench", "lake", cache_dir=Path(work) / "cache")
            s3.ensure_bucket()
            lakes = {"folder": LocalStore(Path(work) / "lake"), "s3": s3, "s3 + cache": s3}
            for store in (lakes["folder"], s3):
                fill(store, args.minutes, args.people)
            end = T0 + args.minutes * 60
            spans = {"whole session": Window(from_s=None, to_s=None), "last minute": Window(from_s=end - 60, to_s=end)}
            print(f"{args.minutes} min of one session, 3 cameras x {args.people} people at 10 Hz, "
                  f"median of {args.rounds} rounds")
            print("| query | lake | objects | rows | wall s | CPU s |\n|---|---|---|---|---|---|")
            results = {}
            for name, span in spans.items():
                cache = LiveFileCache(LIVE_FILE_CACHE_BYTES)  # the API's on an S3 lake; warm after round 1
                for kind, store in lakes.items():
                    lake = ParquetLake(store)
                    objects = len(environment_keys(lake, "map_trajectories", "env", source="live",
                                                   session_id="s-bench", from_s=span.from_s, to_s=span.to_s))
                    wall, cpu, rows = results[name, kind] = timed(lake, span, args.rounds,
                                                                  cache if kind == "s3 + cache" else None)
                    shown = "glob" if kind == "folder" else objects
                    print(f"| {name} | {kind} | {shown} | {rows} | {wall:.3f} | {cpu:.3f} |")
            for name in spans:
                (fw, fc, _) = results[name, "folder"]
                for kind in ("s3", "s3 + cache"):
                    sw, sc, _ = results[name, kind]
                    print(f"{name}: {kind}/folder wall x{sw / fw:.1f}, CPU x{sc / fc:.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
