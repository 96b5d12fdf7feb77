"""Scale-out speed: the same materialization of the sample environment in-process, and through the
Celery executor with 1 and 2 workers (prod profile: SeaweedFS, RabbitMQ vhost, PostgreSQL, all local),
beside the ceiling of 2 workers on this machine: the detector alone in 2 processes.

    .venv/bin/python bench/scale_speed.py [--source-frames 120]

Each row runs once. Seconds are from the first run launched to the last run finished (the services and
workers are started before the clock). The machine may be shared: compare rows of one invocation.
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from pipeline_speed import detect_in_processes, materialize_sequentially

from orchestration.services import run_launcher, scale_cluster
from resources.perception import PerceptionResource
from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.environment import scan_sub_videos
from spoton.sample import ENV_NAME
from spoton.sample.builder import build_sample_environment
from spoton.storage.store import LocalStore
from spoton.video import iter_frames

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge


def on_celery(work: Path, workers: list[str], store_root: Path) -> tuple[float, dict[str, int]]:
    """Seconds to materialize everything through Celery on ``workers``, and the steps each ran."""
    with scale_cluster(work, workers, store_root) as cluster:
        launcher = run_launcher(cluster.env, "--environment", ENV_NAME, "--json", "--parallel-runs", str(len(workers)), capture=True)
    if launcher.returncode != 0:
        raise SystemExit(f"the Celery materialization failed:\n{launcher.stdout[-2000:]}{launcher.stderr[-2000:]}")
    report = json.loads(launcher.stdout.strip().splitlines()[-1])
    return report["seconds"], report["steps_per_worker"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-frames", type=int, default=120)
    args = parser.parse_args()
    os.environ.setdefault("SPOTON_ORT_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="spoton-scale-bench-") as tmp:
        store_root = Path(tmp) / "store"
        build_sample_environment(fetch_sample_video(CACHE), store_root, ENV_NAME, max_source_frames=args.source_frames)
        videos = sorted(store_root.glob(f"{ENV_NAME}/cam*/sub_video_*.mp4"))
        camera_frames = sum(1 for v in videos for _ in iter_frames(v))
        rows = [("in-process (one process, partitions in sequence)",
                 materialize_sequentially(scan_sub_videos(LocalStore(store_root)), store_root, Path(tmp) / "lake",
                                          PerceptionResource(ort_threads=1, cache_dir=str(CACHE))), "")]
        for workers in (["a"], ["a", "b"]):
            seconds, steps = on_celery(Path(tmp) / f"celery-{len(workers)}", workers, store_root)
            rows.append((f"Celery, {len(workers)} worker{'s' * (len(workers) > 1)}", seconds,
                         ", ".join(f"{name}={n}" for name, n in steps.items())))
        rows.append(("ceiling of 2 workers: detector only, 2 processes", detect_in_processes(videos, 2, camera_frames), ""))

    print(f"\nsample environment: 3 cameras, {args.source_frames} source frames, {camera_frames} camera-frames; "
          f"{os.cpu_count()} cores, shared with other work while it ran: {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"| {'path':<50} | {'seconds':>7} | {'camera-frames/s':>15} | {'steps per worker':<16} |")
    print(f"|{'-' * 52}|{'-' * 9}|{'-' * 17}|{'-' * 18}|")
    for label, seconds, steps in rows:
        print(f"| {label:<50} | {seconds:>7.1f} | {camera_frames / seconds:>15.2f} | {steps:<16} |")
    one, two = rows[1][1], rows[2][1]
    print(f"\n2 workers vs 1: {one / two:.2f}x; 2 workers vs in-process: {rows[0][1] / two:.2f}x")


if __name__ == "__main__":
    main()
