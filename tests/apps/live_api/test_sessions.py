"""The session loop's own figures: frame-to-tick times the frame each tick describes; a processed frame
that a newer one replaces before any tick is counted as superseded, not timed."""
import threading
import time

import numpy as np
from live_api_server import ENV_NAME, live_store  # noqa: F401  (fixture)
from prometheus_client import generate_latest

from apps.live_api.health import LiveMetrics
from apps.live_api.sessions import SessionManager
from spoton.live.sources import SourceSpec
from spoton.records import Detections
from spoton.storage.store import LocalStore
from spoton.video import VideoFrame


class NoPeople:
    def detect(self, image: np.ndarray) -> Detections:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0))


class NoFanout:
    def publish(self, *_, **__) -> None:
        pass


def test_frame_to_tick_times_the_described_frame_and_counts_superseded_ones(live_store):  # noqa: F811
    metrics = LiveMetrics()
    manager = SessionManager(LocalStore(live_store), NoPeople, NoFanout(), metrics, instance_id="test",
                             max_sessions=1, max_tick_rate_hz=30)
    session = manager.create(ENV_NAME, {"cam1": SourceSpec("webrtc", "browser")}, 2.0)  # a tick every 500 ms
    source, stop = session.sources["cam1"], threading.Event()

    def feed() -> None:  # a 30 fps webcam: ~15 processed frames between two ticks
        index = 0
        while not stop.wait(1 / 30):
            source.publish(VideoFrame(index=index, ts=index / 30, image=np.zeros((96, 128, 3), np.uint8)))
            index += 1

    threading.Thread(target=feed, daemon=True).start()
    time.sleep(2.6)
    exported = generate_latest(metrics.registry).decode()
    stop.set()
    session.stop()
    status = session.status()
    assert status["ticks_published"] >= 3 and status["superseded_frames"] >= 3 * status["ticks_published"]
    # timing the oldest processed frame since the last tick would put p50 near half the tick interval (250 ms)
    assert status["latency_ms"]["p50"] < 150, status["latency_ms"]
    assert f'spoton_live_superseded_frames_total{{session="{session.id}"}}' in exported
