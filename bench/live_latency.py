"""Live API latency: one session on the sample environment, then 200 WebSocket clients and 5 slow ones.

Starts the real API (uvicorn subprocess) on a free port over a short build of the sample
environment, then for each phase creates a fresh session and reads it for ``--seconds``:

1. one client: frame-to-tick latency p50/p95 and processing fps (the session's own figures),
   and the tick delay the client sees (receive time - the tick's ``ts_unix_ms``);
2. ``--clients`` clients that read everything plus ``--slow`` clients that never read:
   the same figures, so the fan-out's cost shows as the ratio to phase 1.

    .venv/bin/python bench/live_latency.py --seconds 20
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import websockets

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

KEY = "bench-admin-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_api(store: Path, port: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "SPOTON_STORE": str(store), "SPOTON_LIVE_PORT": str(port),
           "SPOTON_API_KEYS": f"{KEY}:admin", "SPOTON_BUILD_SAMPLE": "0", "SPOTON_ORT_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "SPOTON_MAX_TICK_RATE": "30"}
    env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "apps.live_api"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the API exited with {process.returncode}")
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the API did not become ready in 120 s")


@contextmanager
def sample_api(source_frames: int, threads: int, prefix: str) -> Iterator[tuple[subprocess.Popen, int]]:
    """The sample environment built into a temporary store and a ready API serving it: (process, port)."""
    from spoton.artifacts import fetch_sample_video
    from spoton.sample import ENV_NAME
    from spoton.sample.builder import build_sample_environment

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        store = Path(tmp) / "store"
        build_sample_environment(fetch_sample_video(), store, ENV_NAME, max_source_frames=source_frames)
        port = free_port()
        api = start_api(store, port, threads)
        try:
            yield api, port
        finally:
            api.terminate()
            api.wait(30)


async def reader(url: str, delays: list[float], stop: asyncio.Event) -> int:
    ticks = 0
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
        while not stop.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            now_ms = time.time() * 1000
            message = json.loads(text)
            if message.get("type") == "tick":
                delays.append(now_ms - message["ts_unix_ms"])
                ticks += 1
    return ticks


async def slow_reader(url: str, stop: asyncio.Event) -> None:
    """Connects, then never reads: its queue on the server fills and drops old ticks."""
    async with websockets.connect(url, max_queue=1, open_timeout=60):
        await stop.wait()


async def phase(base: str, ws_base: str, clients: int, slow: int, seconds: float, tick_rate: float) -> dict:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        created = (await http.post("/api/v1/sessions", json={"environment": "pets_s2l1",
                                                             "tick_rate_hz": tick_rate})).json()
        sid = created["session_id"]
        url = f"{ws_base}/ws/sessions/{sid}?token={KEY}"
        stop = asyncio.Event()
        delays: list[float] = []
        tasks = [asyncio.create_task(reader(url, delays, stop)) for _ in range(clients)]
        tasks += [asyncio.create_task(slow_reader(url, stop)) for _ in range(slow)]
        await asyncio.sleep(seconds)
        status = (await http.get(f"/api/v1/sessions/{sid}")).json()
        metrics = (await http.get("/metrics")).text
        stop.set()
        counts = await asyncio.gather(*tasks, return_exceptions=True)
        await http.delete(f"/api/v1/sessions/{sid}")
    errors = [c for c in counts if isinstance(c, Exception)]
    client_drops = next((float(line.split()[-1]) for line in metrics.splitlines()
                         if line.startswith("spoton_live_client_ticks_dropped_total")), 0.0)
    return {"clients": clients, "slow": slow, "fps": status["fps"], "p50": status["latency_ms"]["p50"],
            "p95": status["latency_ms"]["p95"], "ticks": status["ticks_published"],
            "delay_p50": float(np.percentile(delays, 50)) if delays else float("nan"),
            "delay_p95": float(np.percentile(delays, 95)) if delays else float("nan"),
            "received": sum(c for c in counts if isinstance(c, int)), "errors": len(errors),
            "dropped_frames": status["dropped_frames"], "client_drops": client_drops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--slow", type=int, default=5)
    parser.add_argument("--tick-rate", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the API")
    parser.add_argument("--source-frames", type=int, default=96, help="sample environment length")
    args = parser.parse_args()

    with sample_api(args.source_frames, args.threads, "spoton-live-bench-") as (_, port):
        base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        one = asyncio.run(phase(base, ws_base, 1, 0, args.seconds, args.tick_rate))
        many = asyncio.run(phase(base, ws_base, args.clients, args.slow, args.seconds, args.tick_rate))

    print(f"\nlive API, sample environment (3 cameras, 640x480, 7 fps sources), tick rate {args.tick_rate:g}/s, "
          f"{args.seconds:g} s per phase, ONNX threads {args.threads}, {os.cpu_count()} CPUs\n")
    header = (f"{'clients':>8} {'slow':>5} {'fps':>6} {'f->t p50 ms':>12} {'f->t p95 ms':>12} "
              f"{'ticks':>6} {'delay p50 ms':>13} {'delay p95 ms':>13} {'ticks recv':>11} {'errors':>7} "
              f"{'client drops':>13}")
    print(header)
    print("-" * len(header))
    for row in (one, many):
        print(f"{row['clients']:>8} {row['slow']:>5} {row['fps']:>6.2f} {row['p50']:>12.1f} {row['p95']:>12.1f} "
              f"{row['ticks']:>6} {row['delay_p50']:>13.1f} {row['delay_p95']:>13.1f} {row['received']:>11} "
              f"{row['errors']:>7} {row['client_drops']:>13.0f}")
    print(f"\nfps with {args.clients}+{args.slow} clients / fps with 1: {many['fps'] / one['fps']:.2f}")
    print(f"tick delay p95 added by the fan-out to {args.clients} clients: "
          f"{many['delay_p95'] - one['delay_p95']:+.1f} ms (p95 {many['delay_p95']:.1f} vs {one['delay_p95']:.1f} ms)")
    print("f->t: frame available -> tick handed to the fan-out (server); delay: tick built -> client received")


if __name__ == "__main__":
    main()
