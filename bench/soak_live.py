"""Live API soak: one session on the sample environment for ``--minutes`` at the sample's own rate.

Starts the real API (uvicorn subprocess, as ``bench/live_latency.py`` does), creates one session
(file sources played in real time, looped), keeps one WebSocket client reading its ticks, and
samples the API process's resident memory (VmRSS) and open file descriptors every ``--every-s``.
Prints one row per sample and the start -> end change: flat is the goal (no leak per frame or tick).

    .venv/bin/python bench/soak_live.py --minutes 10
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_latency import KEY, sample_api  # noqa: E402  (the same API start-up)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def soak(base: str, ws_base: str, pid: int, seconds: float, every_s: float) -> list[dict]:
    headers = {"Authorization": f"Bearer {KEY}"}
    rows: list[dict] = []
    ticks = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        created = await http.post("/api/v1/sessions", json={"environment": "pets_s2l1"})
        created.raise_for_status()
        sid = created.json()["session_id"]
        async with websockets.connect(f"{ws_base}/ws/sessions/{sid}?token={KEY}", max_size=None,
                                      open_timeout=60) as ws:
            start = time.monotonic()
            next_sample = start
            while True:
                now = time.monotonic()
                if now >= next_sample:
                    status = (await http.get(f"/api/v1/sessions/{sid}")).json()
                    rows.append({"t_s": now - start, "rss_mib": rss_mib(pid), "fds": open_fds(pid),
                                 "state": status["state"], "fps": status["fps"],
                                 "frames": sum(c["frames_read"] for c in status["cameras"].values()),
                                 "ticks_recv": ticks})
                    print(_row(rows[-1]), flush=True)
                    if now - start >= seconds:
                        break
                    next_sample = min(next_sample + every_s, start + seconds)
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, next_sample - now)))
                    ticks += message.get("type") == "tick"
                except asyncio.TimeoutError:
                    pass
        await http.delete(f"/api/v1/sessions/{sid}")
    return rows


HEADER = f"{'t (s)':>7} {'RSS MiB':>9} {'open FDs':>9} {'state':>9} {'fps':>6} {'frames read':>12} {'ticks recv':>11}"


def _row(row: dict) -> str:
    return (f"{row['t_s']:>7.0f} {row['rss_mib']:>9.1f} {row['fds']:>9} {row['state']:>9} {row['fps']:>6.2f} "
            f"{row['frames']:>12} {row['ticks_recv']:>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every-s", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the API")
    parser.add_argument("--source-frames", type=int, default=96, help="sample environment length (looped)")
    args = parser.parse_args()

    with sample_api(args.source_frames, args.threads, "spoton-soak-") as (api, port):
        print(f"\nlive API soak, one session on the sample environment at its own rate, "
              f"{args.minutes:g} min, {os.cpu_count()} CPUs, API pid {api.pid}\n")
        print(HEADER)
        print("-" * len(HEADER))
        rows = asyncio.run(soak(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", api.pid,
                                args.minutes * 60, args.every_s))
    first, last = rows[0], rows[-1]
    print(f"\nRSS {first['rss_mib']:.1f} -> {last['rss_mib']:.1f} MiB ({last['rss_mib'] - first['rss_mib']:+.1f}), "
          f"open FDs {first['fds']} -> {last['fds']} ({last['fds'] - first['fds']:+d}), "
          f"{last['frames']} frames read, {last['ticks_recv']} ticks received")


if __name__ == "__main__":
    main()
