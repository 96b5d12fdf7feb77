"""Cameras of an instant processed in parallel give exactly the sequential results (real NanoDet, real tracker)."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from spoton.perception.config import PerceptionConfig
from spoton.perception.processor import ClockFrame, FrameProcessor

CAMERAS = ("left", "middle", "right")


@pytest.fixture(scope="module")
def instants(sample_video) -> list[dict[str, ClockFrame]]:
    """12 instants of three "cameras" (overlapping crops of the sample video); the right one misses two."""
    capture = cv2.VideoCapture(str(sample_video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    instants = []
    for index in range(12):
        ok, image = capture.read()
        assert ok
        crops = {"left": image[:, :400], "middle": image[:, 184:584], "right": image[:, 368:]}
        instants.append({cam: ClockFrame(index, index, index / 7, np.ascontiguousarray(crop))
                         for cam, crop in crops.items() if not (cam == "right" and index in (4, 5))})
    capture.release()
    return instants


class ThreadRecordingDetector:
    """The real detector, noting the thread of each call (to show the cameras really ran side by side)."""

    def __init__(self, detector):
        self.detector, self.threads = detector, set()

    def detect(self, image):
        self.threads.add(threading.get_ident())
        return self.detector.detect(image)


def run(processor: FrameProcessor, instants) -> list[dict]:
    try:
        return [processor.process(frames) for frames in instants]
    finally:
        processor.close()


def test_parallel_cameras_give_the_sequential_tracks(instants, cache_dir):
    detector = PerceptionConfig(threads=1, cache_dir=cache_dir).build_detector()
    recording = ThreadRecordingDetector(detector)
    sequential = run(PerceptionConfig(threads=1).build_processor(CAMERAS, 7.0, detector=detector), instants)
    parallel = run(PerceptionConfig(threads=1, camera_workers=3).build_processor(CAMERAS, 7.0, detector=recording),
                   instants)
    assert len(recording.threads) > 1, "camera_workers=3 ran every camera on one thread"
    tracked = 0
    for seq, par, frames in zip(sequential, parallel, instants):
        assert list(par) == list(seq) == list(frames)  # same cameras, in the order given
        for cam in seq:
            a, b = seq[cam], par[cam]
            assert (a.frame_index, a.frame_size) == (b.frame_index, b.frame_size)
            np.testing.assert_array_equal(a.detections.xyxy, b.detections.xyxy)
            np.testing.assert_array_equal(a.tracks.track_id, b.tracks.track_id)
            np.testing.assert_array_equal(a.tracks.xyxy, b.tracks.xyxy)
            tracked += len(a.tracks)
    assert tracked > 20, "the crops should hold tracked people, or the comparison says little"


def camera_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("camera")}


def test_close_ends_the_pool_threads_and_processing_goes_on_sequentially(instants, cache_dir):
    before = camera_threads()  # other tests' pools may still be ending: judge only this processor's threads
    processor = PerceptionConfig(threads=1, camera_workers=3, cache_dir=cache_dir).build_processor(CAMERAS, 7.0)
    processor.process(instants[0])
    mine = camera_threads() - before
    assert len(mine) == 2  # 3 workers: the caller and 2 pool threads
    processor.close()
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in mine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.is_alive() for t in mine), "a closed processor left its pool threads running"
    assert set(processor.process(instants[1])) == set(CAMERAS)


def test_bad_worker_counts_are_refused(cache_dir):
    processor = PerceptionConfig(threads=1, cache_dir=cache_dir).build_processor(CAMERAS, 7.0)
    with pytest.raises(ValueError, match="camera_workers must be >= 1"):
        PerceptionConfig(camera_workers=0)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        FrameProcessor(CAMERAS, processor.detector, workers=0)
