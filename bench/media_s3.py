"""Media Range GETs through the live API: a local store folder vs an S3 store (SeaweedFS), one run.

Starts a SeaweedFS and two API processes on loopback, one with ``SPOTON_STORE`` a folder, one with
``SPOTON_STORE=s3://...``, puts the same object (``--object-mib`` of random bytes: serving a range
does not depend on the content) in both, then asks each API for ``--ranges``
random 1 MiB ranges, one after the other, and prints per store the latency p50/p95 (request to last
byte), the throughput, and the S3/local ratios; then one whole-object GET each.

    PYTHONPATH=. .venv/bin/python bench/media_s3.py --ranges 100
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.live_latency import KEY, free_port, start_api  # noqa: E402

MIB = 1024 * 1024
OBJECT_KEY = "bench/cam1/blob.bin"  # not .mp4: the API warms its detector up on the store's first video
ACCESS, SECRET = "bench-access", "bench-secret-0123456789"


def timed_ranges(base: str, size: int, count: int, seed: int) -> tuple[list[float], int]:
    """``count`` random 1 MiB ranges, sequentially: each one's seconds to the last byte, and bytes read."""
    rng = random.Random(seed)
    seconds, total = [], 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        client.get(f"/api/v1/media/{OBJECT_KEY}", headers={"Range": "bytes=0-0"})  # connection and first HEAD
        for _ in range(count):
            start = rng.randrange(0, size - MIB)
            began = time.perf_counter()
            response = client.get(f"/api/v1/media/{OBJECT_KEY}", headers={"Range": f"bytes={start}-{start + MIB - 1}"})
            seconds.append(time.perf_counter() - began)
            if response.status_code != 206 or len(response.content) != MIB:
                raise SystemExit(f"{base}: range answered {response.status_code} with {len(response.content)} bytes")
            total += len(response.content)
    return seconds, total


def whole_get(base: str, size: int) -> float:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as client:
        began = time.perf_counter()
        response = client.get(f"/api/v1/media/{OBJECT_KEY}")
        elapsed = time.perf_counter() - began
    if response.status_code != 200 or len(response.content) != size:
        raise SystemExit(f"{base}: whole GET answered {response.status_code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranges", type=int, default=100)
    parser.add_argument("--object-mib", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from orchestration.services import SeaweedServer
    from spoton.storage.store import LocalStore, S3Store, s3_client

    size = args.object_mib * MIB
    data = np.random.default_rng(args.seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    with tempfile.TemporaryDirectory(prefix="spoton-bench-media-") as tmp:
        tmp = Path(tmp)
        LocalStore(tmp / "store").write_bytes(OBJECT_KEY, data)
        seaweed = SeaweedServer(tmp / "seaweed", ACCESS, SECRET).start()
        processes = []
        try:
            client = s3_client(endpoint_url=seaweed.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS,
                               aws_secret_access_key=SECRET)
            s3 = S3Store(client, "bench-media", "store")
            s3.ensure_bucket()
            s3.write_bytes(OBJECT_KEY, data)
            os.environ.update({"SPOTON_S3_ENDPOINT": seaweed.endpoint, "AWS_ACCESS_KEY_ID": ACCESS,
                               "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                               "SPOTON_VAR": str(tmp / "var")})  # only the S3 instance reads the S3 settings
            rows = {}
            for name, store in (("local", tmp / "store"), ("s3", "s3://bench-media/store")):
                port = free_port()
                processes.append(start_api(store, port, threads=1))
                base = f"http://127.0.0.1:{port}"
                seconds, total = timed_ranges(base, size, args.ranges, args.seed)
                rows[name] = {"p50": np.percentile(seconds, 50) * 1000, "p95": np.percentile(seconds, 95) * 1000,
                              "mib_s": total / MIB / sum(seconds), "whole_s": whole_get(base, size)}
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
            seaweed.stop()
    print(f"{args.ranges} random 1 MiB Range GETs of a {args.object_mib} MiB object through the live API "
          f"(one client, sequential), then one whole GET")
    print(f"{'store':<6} {'p50 ms':>8} {'p95 ms':>8} {'MiB/s':>8} {'whole GET s':>12}")
    for name, row in rows.items():
        print(f"{name:<6} {row['p50']:>8.1f} {row['p95']:>8.1f} {row['mib_s']:>8.1f} {row['whole_s']:>12.2f}")
    local, s3 = rows["local"], rows["s3"]
    print(f"S3/local: p50 x{s3['p50'] / local['p50']:.2f}, p95 x{s3['p95'] / local['p95']:.2f}, "
          f"throughput x{s3['mib_s'] / local['mib_s']:.2f}, whole GET x{s3['whole_s'] / local['whole_s']:.2f}")


if __name__ == "__main__":
    main()
