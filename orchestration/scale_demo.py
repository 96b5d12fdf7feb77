"""`make scale-demo`: the prod profile on this machine. Starts SeaweedFS, a private RabbitMQ vhost, a private
PostgreSQL database and two Celery workers (a, b); puts the sample environment in S3; materializes every
partition through the Celery executor; prints the steps each worker ran and the throughput. Everything it
started is stopped and removed on exit, on failure and on Ctrl-C.

    .venv/bin/python -m orchestration.scale_demo [--max-source-frames 120] [--workers a,b]
"""
import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from orchestration.services import run_launcher, scale_cluster
from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.sample import ENV_NAME
from spoton.sample.builder import build_sample_environment


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through scale_cluster's clean-up like Ctrl-C does


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-source-frames", type=int, default=120,
                        help="build the sample environment from the first N source frames (default 120)")
    parser.add_argument("--workers", default="a,b", help="comma-separated worker names, one process each")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    names = [name for name in args.workers.split(",") if name]
    with tempfile.TemporaryDirectory(prefix="spoton-scale-") as tmp:
        work = Path(tmp)
        print(f"1/3 sample environment {ENV_NAME!r} ({args.max_source_frames} source frames)", flush=True)
        build_sample_environment(fetch_sample_video(cache_dir_from(os.environ)), work / "store", ENV_NAME,
                                 max_source_frames=args.max_source_frames)
        print(f"2/3 SeaweedFS, RabbitMQ vhost, PostgreSQL database, workers {', '.join(names)}", flush=True)
        started = time.perf_counter()
        with scale_cluster(work / "cluster", names, work / "store") as cluster:
            print(f"    up in {time.perf_counter() - started:.0f} s: S3 {cluster.seaweed.endpoint}, "
                  f"worker logs in {work / 'cluster'}", flush=True)
            print("3/3 materializing every partition through the Celery executor", flush=True)
            launcher = run_launcher(cluster.env, "--environment", ENV_NAME, "--parallel-runs", str(len(names)))
        print("stopped the workers, SeaweedFS, the vhost and the database")
    return launcher.returncode


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: stopped the workers, SeaweedFS, the vhost and the database", file=sys.stderr)
        sys.exit(130)
