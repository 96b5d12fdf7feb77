"""Live API latency: sequential vs parallel cameras, then 200 WebSocket clients and 5 slow ones.

Starts two real APIs (uvicorn subprocesses) over one short build of the sample environment (3
cameras): one processing a session's cameras one after the other (``SPOTON_CAMERA_WORKERS=1``),
one in parallel (``--workers``, default every core). For each phase it creates a fresh session and
reads it for ``--seconds``:

1. sequential, one client: frame-to-tick latency p50/p95 and processing fps (the session's own
   figures), and the tick delay the client sees (receive time - the tick's ``ts_unix_ms``);
2. parallel, one client: the same, so the parallel/sequential ratio comes from one run;
3. parallel, ``--clients`` clients that read everything plus ``--slow`` that never read: the
   fan-out's cost shows as the tick delay's p95 minus phase 2's, as the API's own send delay
   (``spoton_live_tick_send_delay_seconds``: no bench client in it) and as the CPU time of the
   API's event-loop thread per tick (robust to a busy machine);
4. with ``--compression``: phase 3 again on an API with permessage-deflate on (the old default).

Before the APIs, an in-process A/B: the same 3-camera instants through a sequential and a parallel
FrameProcessor (one shared detector), alternated instant by instant so a busy machine weighs on
both sides alike: process() wall time p50/p95 and the ratio (``--processor-only``: just that);
and the CPU time to frame one tick for 200 WebSocket connections with and without compression.

``--rounds`` repeats phases 1-2 alternately (the machine is shared: alternating spreads its noise
over both sides). The clients note a tick's receive time before anything else and read only its
``ts_unix_ms`` (no full JSON parse), so the bench process's own work weighs little in the delay.

    PYTHONPATH=. .venv/bin/python bench/live_latency.py --seconds 20 --compression
    PYTHONPATH=. .venv/bin/python bench/live_latency.py --seconds 20 --precision int8   # APIs on NanoDet INT8
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
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import websockets

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from spoton.artifacts import cache_dir_from  # noqa: E402

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge

KEY = "bench-admin-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_api(store: Path, port: int, threads: int, extra_env: dict[str, str] | None = None,
              module: str = "apps.live_api") -> subprocess.Popen:
    env = {**os.environ, "SPOTON_STORE": str(store), "SPOTON_LIVE_PORT": str(port),
           "SPOTON_API_KEYS": f"{KEY}:admin", "SPOTON_BUILD_SAMPLE": "0", "SPOTON_ORT_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "SPOTON_MAX_TICK_RATE": "30",
           "SPOTON_WS_MAX_CLIENTS": "1024", "SPOTON_WS_MAX_CLIENTS_PER_SESSION": "1024", **(extra_env or {})}
    env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", module], cwd=REPO_ROOT, env=env,
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
def sample_store(source_frames: int, prefix: str) -> Iterator[Path]:
    """The sample environment built into a temporary store."""
    from spoton.artifacts import fetch_sample_video
    from spoton.sample import ENV_NAME
    from spoton.sample.builder import build_sample_environment

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        store = Path(tmp) / "store"
        build_sample_environment(fetch_sample_video(CACHE), store, ENV_NAME, max_source_frames=source_frames)
        yield store


@contextmanager
def running_api(store: Path, threads: int, extra_env: dict[str, str] | None = None,
                module: str = "apps.live_api") -> Iterator[tuple[subprocess.Popen, int]]:
    """A ready API over ``store`` on a free port: (process, port); ``module`` is what runs it."""
    port = free_port()
    api = start_api(store, port, threads, extra_env, module)
    try:
        yield api, port
    finally:
        api.terminate()
        api.wait(30)


@contextmanager
def sample_api(source_frames: int, threads: int, prefix: str,
               extra_env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, int]]:
    """The sample environment built into a temporary store and a ready API serving it: (process, port)."""
    with sample_store(source_frames, prefix) as store, running_api(store, threads, extra_env) as api:
        yield api


async def reader(url: str, delays: list[float], stop: asyncio.Event, connected: list[int] | None = None) -> int:
    """Reads every message until ``stop``; the receive time is noted before anything else.

    One ``async for`` per client, closed from outside on ``stop``: no timeout task per message
    (``asyncio.wait_for`` makes one), which with 200 clients in this one process weighed on the
    delay it measures."""
    ticks = 0
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
        if connected is not None:
            connected[0] += 1
        closer = asyncio.create_task(_close_on(stop, ws))
        try:
            async for text in ws:
                now_ms = time.time() * 1000
                if text.startswith('{"type":"tick"'):
                    delays.append(now_ms - tick_time_ms(text))
                    ticks += 1
        except websockets.ConnectionClosed:
            pass
        finally:
            closer.cancel()
    return ticks


async def _close_on(stop: asyncio.Event, ws) -> None:
    await stop.wait()
    await ws.close()


def tick_time_ms(text: str) -> int:
    """A tick's ``ts_unix_ms``, read without parsing the whole tick."""
    start = text.index('"ts_unix_ms":') + len('"ts_unix_ms":')
    return int(text[start:text.index(",", start)])


async def slow_reader(url: str, stop: asyncio.Event, connected: list[int]) -> None:
    """Connects, then never reads: its queue on the server fills and drops old ticks."""
    async with websockets.connect(url, max_queue=1, open_timeout=60):
        connected[0] += 1
        await stop.wait()


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of a process (or of one of its threads) so far (Linux /proc)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send_buckets(metrics: str) -> list[tuple[float, float]]:
    """(upper bound s, cumulative count) of the API's tick send delay histogram."""
    prefix = 'spoton_live_tick_send_delay_seconds_bucket{le="'
    return [(float(line[len(prefix):].split('"')[0]), float(line.split()[-1]))
            for line in metrics.splitlines() if line.startswith(prefix)]


def bucket_percentile(before: list, after: list, q: float) -> float:
    """The q-th percentile (ms) of what a histogram counted between two reads, interpolated in its bucket."""
    counts = [(le, b - a) for (le, b), (_, a) in zip(after, before)]
    total = counts[-1][1] if counts else 0
    if not total:
        return float("nan")
    target, lower, below = q / 100 * total, 0.0, 0.0
    for le, cumulative in counts:
        if cumulative >= target:
            upper = le if le != float("inf") else lower * 2
            share = (target - below) / max(cumulative - below, 1e-9)
            return 1000 * (lower + share * (upper - lower))
        lower, below = le, cumulative
    return float("nan")


async def phase(base: str, ws_base: str, clients: int, slow: int, seconds: float, tick_rate: float,
                pid: int) -> dict:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        created = (await http.post("/api/v1/sessions", json={"environment": "pets_s2l1",
                                                             "tick_rate_hz": tick_rate})).json()
        sid = created["session_id"]
        url = f"{ws_base}/ws/sessions/{sid}?token={KEY}"
        stop = asyncio.Event()
        delays: list[float] = []
        connected = [0]
        tasks = [asyncio.create_task(reader(url, delays, stop, connected)) for _ in range(clients)]
        tasks += [asyncio.create_task(slow_reader(url, stop, connected)) for _ in range(slow)]
        for _ in range(1200):  # every client connected (handshakes are not the fan-out's cost) ...
            if connected[0] == clients + slow or all(task.done() for task in tasks):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # ... and warm: figures are counted from here
        delays.clear()
        loop_start = cpu_seconds(pid, pid)  # uvicorn's event loop runs in the main thread: the fan-out's CPU
        cpu_start, ticks_start = cpu_seconds(pid), (await http.get(f"/api/v1/sessions/{sid}")).json()["ticks_published"]
        sends_before = send_buckets((await http.get("/metrics")).text)
        await asyncio.sleep(seconds)
        cpu, loop_cpu = cpu_seconds(pid) - cpu_start, cpu_seconds(pid, pid) - loop_start
        status = (await http.get(f"/api/v1/sessions/{sid}")).json()
        metrics = (await http.get("/metrics")).text
        sends = send_buckets(metrics)
        stop.set()
        counts = await asyncio.gather(*tasks, return_exceptions=True)
        await http.delete(f"/api/v1/sessions/{sid}")
    errors = [c for c in counts if isinstance(c, Exception)]
    client_drops = next((float(line.split()[-1]) for line in metrics.splitlines()
                         if line.startswith("spoton_live_client_ticks_dropped_total")), 0.0)
    ticks = max(status["ticks_published"] - ticks_start, 1)
    return {"workers": None, "cpu_ms_per_tick": 1000 * cpu / ticks, "loop_ms_per_tick": 1000 * loop_cpu / ticks,
            "send_p50": bucket_percentile(sends_before, sends, 50),
            "send_p95": bucket_percentile(sends_before, sends, 95), "clients": clients, "slow": slow,
            "fps": status["fps"], "p50": status["latency_ms"]["p50"],
            "p95": status["latency_ms"]["p95"], "ticks": status["ticks_published"],
            "delay_p50": float(np.percentile(delays, 50)) if delays else float("nan"),
            "delay_p95": float(np.percentile(delays, 95)) if delays else float("nan"),
            "received": sum(c for c in counts if isinstance(c, int)), "errors": len(errors),
            "dropped_frames": status["dropped_frames"], "client_drops": client_drops}


def processor_ab(store: Path, workers: int, threads: int, instants: int) -> dict:
    """process() wall time of the sample's 3 cameras, sequential vs ``workers``, alternated per instant."""
    import cv2

    from spoton.perception.config import PerceptionConfig
    from spoton.perception.processor import ClockFrame

    cameras = ("cam1", "cam2", "cam3")
    captures = {cam: cv2.VideoCapture(str(store / "pets_s2l1" / cam / "sub_video_01.mp4")) for cam in cameras}
    frames = []
    for index in range(instants):
        images = {cam: capture.read()[1] for cam, capture in captures.items()}
        if any(image is None for image in images.values()):
            break
        frames.append({cam: ClockFrame(index, index, index / 7, image) for cam, image in images.items()})
    detector = PerceptionConfig(threads=threads, cache_dir=CACHE).build_detector()
    sequential = PerceptionConfig(threads=threads, cache_dir=CACHE).build_processor(cameras, 7.0, detector=detector)
    parallel = PerceptionConfig(threads=threads, camera_workers=workers, cache_dir=CACHE).build_processor(cameras, 7.0,
                                                                                        detector=detector)
    int8_config = PerceptionConfig(threads=threads, camera_workers=workers, detector_precision="int8", cache_dir=CACHE)
    int8_detector = int8_config.build_detector()
    sides = {"sequential": sequential, "parallel": parallel,
             "parallel int8": int8_config.build_processor(cameras, 7.0, detector=int8_detector),
             # a worker per camera: 3 threads time-share 2 cores and end together, instead of 2 + 1 after
             "per camera int8": replace(int8_config, camera_workers=len(cameras)).build_processor(
                 cameras, 7.0, detector=int8_detector)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, float] = {name: 0.0 for name in sides}
    results = {}
    for i, instant in enumerate(frames * 2):  # the clip twice: ~2 x instants samples per side
        names = list(sides)
        for name in names[i % len(names):] + names[:i % len(names)]:  # rotated: each side first in turn
            started, cpu_started = time.perf_counter(), time.process_time()
            out = sides[name].process(instant)
            times[name].append(1000 * (time.perf_counter() - started))
            cpu[name] += time.process_time() - cpu_started
            if name == "parallel":
                results = out
    for processor in sides.values():
        processor.close()
    figures = {name: (float(np.percentile(t, 50)), float(np.percentile(t, 95)), len(t),
                      1000 * cpu[name] / len(t)) for name, t in times.items()}
    figures["inference_share"] = inference_cpu_share(sequential, frames)
    return figures, sample_tick(results)


def inference_cpu_share(processor, frames: list[dict]) -> float:
    """Share of process()'s CPU time spent inside ONNX Runtime (which runs without the GIL): the
    part of the work that cameras can do at once; CPU time, so a busy machine barely moves it."""
    session, spent = processor.detector.session, [0.0]

    class TimedSession:
        def __getattr__(self, name):
            return getattr(session, name)

        def run(self, *args, **kwargs):
            started = time.thread_time()
            try:
                return session.run(*args, **kwargs)
            finally:
                spent[0] += time.thread_time() - started

    processor.detector.session = TimedSession()
    started = time.thread_time()
    try:
        for instant in frames:
            processor.process(instant)
    finally:
        processor.detector.session = session
    return spent[0] / (time.thread_time() - started)


def sample_tick(results: dict) -> str:
    """A tick of real results, serialised as the session does."""
    from spoton.live.tick import TickBuilder

    tick = TickBuilder("s-bench").build(results, {cam: r.tracks.track_id for cam, r in results.items()},
                                        selected_target_id=None, mode="auto", media_ts={cam: 0 for cam in results},
                                        ts_unix_ms=int(time.time() * 1000), ts_mono_ms=0)
    return json.dumps(tick, separators=(",", ":"))


def framing_ab(text: str, clients: int, repeats: int = 30) -> dict[str, float]:
    """CPU ms to frame one tick for ``clients`` WebSocket connections (the sans-io protocol uvicorn
    uses, its permessage-deflate settings) with and without compression, alternated."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    def connection(deflate: bool) -> ServerProtocol:
        protocol = ServerProtocol()
        protocol.state = State.OPEN  # as after the handshake, with what it negotiated
        if deflate:
            protocol.extensions = [PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})]
        return protocol

    sides = {"plain": [connection(False) for _ in range(clients)],
             "deflate": [connection(True) for _ in range(clients)]}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(repeats):
        for name in (("plain", "deflate") if i % 2 else ("deflate", "plain")):
            started = time.process_time()
            for protocol in sides[name]:
                protocol.send_text(text.encode())
                b"".join(protocol.data_to_send())
            times[name].append(1000 * (time.process_time() - started))
    return {name: float(np.median(t)) for name, t in times.items()}


def pooled(rows: list[dict]) -> dict:
    """Rounds of one configuration as one row: mean of each figure, sums of counts."""
    row = dict(rows[0])
    for key in ("fps", "p50", "p95", "delay_p50", "delay_p95", "cpu_ms_per_tick", "loop_ms_per_tick", "send_p50",
                "send_p95"):
        row[key] = float(np.mean([r[key] for r in rows]))
    for key in ("ticks", "received", "errors", "dropped_frames", "client_drops"):
        row[key] = sum(r[key] for r in rows)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--slow", type=int, default=5)
    parser.add_argument("--tick-rate", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the API")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="camera workers (parallel side)")
    parser.add_argument("--rounds", type=int, default=1, help="sequential/parallel pairs, alternated")
    parser.add_argument("--source-frames", type=int, default=96, help="sample environment length")
    parser.add_argument("--processor-only", action="store_true", help="only the in-process A/B")
    parser.add_argument("--instants", type=int, default=48, help="3-camera instants of the in-process A/B")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                        help="the APIs' detector (SPOTON_DETECTOR_PRECISION); the in-process A/B runs both")
    parser.add_argument("--compression", action="store_true",
                        help="also run the clients against an API with permessage-deflate on (the old default)")
    args = parser.parse_args()

    def run(api: subprocess.Popen, port: int, clients: int, slow: int, workers: int, label: str = "") -> dict:
        base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        row = asyncio.run(phase(base, ws_base, clients, slow, args.seconds, args.tick_rate, api.pid))
        return {**row, "workers": f"{workers}{label}"}

    precision_env = {"SPOTON_DETECTOR_PRECISION": args.precision}
    parallel_env = {"SPOTON_CAMERA_WORKERS": str(args.workers), **precision_env}
    with sample_store(args.source_frames, "spoton-live-bench-") as store:
        ab, tick_text = processor_ab(store, args.workers, args.threads, args.instants)
        print(f"\nin-process A/B, 3 cameras (640x480), ONNX threads {args.threads}, {os.cpu_count()} CPUs, "
              f"alternated per instant:\n")
        print(f"{'processor':>15} {'precision':>9} {'workers':>8} {'instants':>9} {'process p50 ms':>15} "
              f"{'process p95 ms':>15} {'CPU ms/instant':>15}")
        for name, precision, workers in (("sequential", "fp32", 1), ("parallel", "fp32", args.workers),
                                         ("parallel int8", "int8", args.workers), ("per camera int8", "int8", 3)):
            p50, p95, count, cpu = ab[name]
            print(f"{name:>15} {precision:>9} {workers:>8} {count:>9} {p50:>15.1f} {p95:>15.1f} {cpu:>15.1f}")
        print(f"parallel / sequential: p50 {ab['parallel'][0] / ab['sequential'][0]:.2f}, "
              f"p95 {ab['parallel'][1] / ab['sequential'][1]:.2f}; ONNX Runtime (no GIL) holds "
              f"{ab['inference_share']:.0%} of process()'s CPU time")
        print(f"int8 / fp32 (parallel): p50 {ab['parallel int8'][0] / ab['parallel'][0]:.2f}, "
              f"p95 {ab['parallel int8'][1] / ab['parallel'][1]:.2f}, "
              f"CPU per instant {ab['parallel int8'][3] / ab['parallel'][3]:.2f}; a worker per camera / "
              f"{args.workers} workers (int8): p50 {ab['per camera int8'][0] / ab['parallel int8'][0]:.2f}, "
              f"p95 {ab['per camera int8'][1] / ab['parallel int8'][1]:.2f}")
        framing = framing_ab(tick_text, args.clients)
        print(f"\nframing one {len(tick_text)}-byte tick for {args.clients} WebSocket clients (CPU ms, median): "
              f"permessage-deflate {framing['deflate']:.2f}, without {framing['plain']:.2f} "
              f"(x{framing['deflate'] / framing['plain']:.0f})", flush=True)
        if args.processor_only:
            return
    with sample_store(args.source_frames, "spoton-live-bench-") as store, \
            running_api(store, args.threads, {"SPOTON_CAMERA_WORKERS": "1", **precision_env}) as (seq_api, seq_port), \
            running_api(store, args.threads, parallel_env) as (par_api, par_port):
        seq_rows, par_rows = [], []
        for _ in range(args.rounds):
            seq_rows.append(run(seq_api, seq_port, 1, 0, 1))
            par_rows.append(run(par_api, par_port, 1, 0, args.workers))
        many = run(par_api, par_port, args.clients, args.slow, args.workers)
        deflated = None
        if args.compression:
            with running_api(store, args.threads, {**parallel_env, "SPOTON_WS_COMPRESSION": "1"}) as (api, port):
                deflated = run(api, port, args.clients, args.slow, args.workers, "+zlib")
    seq, par = pooled(seq_rows), pooled(par_rows)

    print(f"\nlive API, sample environment (3 cameras, 640x480, 7 fps sources), tick rate {args.tick_rate:g}/s, "
          f"{args.seconds:g} s per phase, {args.rounds} round(s), ONNX threads {args.threads}, {os.cpu_count()} CPUs, "
          f"detector {args.precision}, load average {os.getloadavg()[0]:.2f}\n")
    header = (f"{'workers':>8} {'cpu ms/tick':>11} {'loop ms/tick':>12} {'clients':>8} {'slow':>5} {'fps':>6} "
              f"{'f->t p50 ms':>12} {'f->t p95 ms':>12} "
              f"{'ticks':>6} {'delay p50 ms':>13} {'delay p95 ms':>13} {'ticks recv':>11} {'errors':>7} "
              f"{'client drops':>13} {'send p50 ms':>12} {'send p95 ms':>12}")
    print(header)
    print("-" * len(header))
    for row in (seq, par, many, deflated):
        if row is None:
            continue
        print(f"{row['workers']:>8} {row['cpu_ms_per_tick']:>11.1f} {row['loop_ms_per_tick']:>12.1f} "
              f"{row['clients']:>8} {row['slow']:>5} {row['fps']:>6.2f} {row['p50']:>12.1f} "
              f"{row['p95']:>12.1f} {row['ticks']:>6} {row['delay_p50']:>13.1f} {row['delay_p95']:>13.1f} "
              f"{row['received']:>11} {row['errors']:>7} {row['client_drops']:>13.0f} {row['send_p50']:>12.1f} "
              f"{row['send_p95']:>12.1f}")
    print(f"\nframe->tick p95, parallel ({args.workers} workers) / sequential: {par['p95'] / seq['p95']:.2f} "
          f"({par['p95']:.1f} vs {seq['p95']:.1f} ms; p50 {par['p50']:.1f} vs {seq['p50']:.1f} ms)")
    print(f"fps with {args.clients}+{args.slow} clients / fps with 1: {many['fps'] / par['fps']:.2f}")
    print(f"tick delay p95 added by the fan-out to {args.clients} clients: "
          f"{many['delay_p95'] - par['delay_p95']:+.1f} ms (p95 {many['delay_p95']:.1f} vs {par['delay_p95']:.1f} ms)")
    print(f"server send delay p95 (tick published -> on each client's socket) with {args.clients} clients: "
          f"{many['send_p95']:.1f} ms vs {par['send_p95']:.1f} ms with 1 ({many['send_p95'] - par['send_p95']:+.1f} ms)")
    if deflated is not None:
        print(f"with permessage-deflate (+zlib): send p95 {deflated['send_p95']:.1f} vs {many['send_p95']:.1f} ms, "
              f"event-loop CPU {deflated['loop_ms_per_tick']:.1f} vs {many['loop_ms_per_tick']:.1f} ms per tick without")
    print("f->t: frame available -> tick handed to the fan-out (server); delay: tick built -> client received;\n"
          "cpu ms/tick: the API process's CPU time per published tick, loop ms/tick: that of its event loop thread\n"
          "(the fan-out, HTTP; robust to a busy machine);\n"
          "send: the API's spoton_live_tick_send_delay_seconds over the phase (no bench client in it; "
          "interpolated in its buckets)")


if __name__ == "__main__":
    main()
