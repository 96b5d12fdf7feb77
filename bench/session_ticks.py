"""Which processed frames of a 30 fps camera get a tick of their own: a live session with a detector that sleeps.

A session (the real ``LiveSession`` loop, tracker and ticks) reads a ``webrtc`` source fed 30 frames a
second (a webcam's rate) from a thread; the detector only sleeps ``--detector-s`` (no CPU: the figures
hold on a busy machine). Prints processed frames and ticks a second, the share of processed frames
whose own ``media_ts`` went out in a tick, the session's count of superseded frames (processed, then
replaced by a newer frame before a tick was due), and frame->tick p50/p95: the session's own figure
(the frame each tick describes) and, computed here from the probe, that of the frames with a tick of
their own. The two agree since the session times the frame its tick describes; before 2026-12-03 it
timed the oldest processed frame not yet in a tick, superseded ones included (docs/benchmarks.md,
"Webcam glass-to-glass").

    PYTHONPATH=. .venv/bin/python bench/session_ticks.py --detector-s 0.05 0.03 --tick-rate 15
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import apps.live_api.sessions as sessions  # noqa: E402
import bench.stage_probe as probe  # noqa: E402
from apps.live_api.health import LiveMetrics  # noqa: E402
from bench.live_latency import sample_store  # noqa: E402
from spoton.live.sources import SourceSpec  # noqa: E402
from spoton.records import Detections  # noqa: E402
from spoton.storage.store import LocalStore  # noqa: E402
from spoton.video import VideoFrame  # noqa: E402


class SleepDetector:
    def __init__(self, seconds: float):
        self.seconds = seconds

    def detect(self, image: np.ndarray) -> Detections:
        time.sleep(self.seconds)
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0))


class NoFanout:
    def publish(self, *_, **__) -> None:
        pass


def run(manager: sessions.SessionManager, tick_rate: float, seconds: float) -> str:
    probe.RECORDS.clear()
    session = manager.create("pets_s2l1", {"cam1": SourceSpec("webrtc", "browser")}, tick_rate)
    source, stop = session.sources["cam1"], threading.Event()

    def feed() -> None:
        index = 0
        while not stop.wait(1 / 30):
            source.publish(VideoFrame(index=index, ts=index / 30, image=np.zeros((480, 640, 3), np.uint8)))
            index += 1

    threading.Thread(target=feed, daemon=True).start()
    time.sleep(seconds)
    stop.set()
    session.stop()
    records = probe.RECORDS
    published = {r["index"]: r["t"] for r in records["publish"]}
    ticks: dict[int, float] = {}
    for tick in records["tick"]:
        for media in tick["media"].values():
            ticks.setdefault(media, tick["t"])
    processed = [(index, media) for p in records["process"] for index, media in p["frames"].values()]
    own = [(ticks[m] - published[i]) * 1000 for i, m in processed if m in ticks]
    status = session.status()
    latency = status["latency_ms"]
    return (f"processed {len(processed) / seconds:5.1f}/s, ticks {len(records['tick']) / seconds:5.1f}/s, "
            f"own tick {len(own) / max(len(processed), 1):4.0%}, superseded {status['superseded_frames']}, "
            f"f->t p50/p95 {latency['p50']}/{latency['p95']} ms, "
            f"own-tick f->t p50/p95 {np.percentile(own, 50):.1f}/{np.percentile(own, 95):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector-s", type=float, nargs="+", default=[0.05, 0.03],
                        help="seconds a detect() call sleeps (one phase each)")
    parser.add_argument("--tick-rate", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    args = parser.parse_args()
    probe.install()
    with sample_store(24, "spoton-session-ticks-") as store:
        for seconds in args.detector_s:
            manager = sessions.SessionManager(LocalStore(store), lambda: SleepDetector(seconds), NoFanout(),
                                              LiveMetrics(), instance_id="bench", max_sessions=1, max_tick_rate_hz=30)
            print(f"detector {seconds * 1000:.0f} ms, {args.tick_rate:g} ticks/s: "
                  f"{run(manager, args.tick_rate, args.seconds)}", flush=True)


if __name__ == "__main__":
    main()
