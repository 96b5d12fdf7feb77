"""The live appearance sampler with the real MobileNetV2 on a real frame: which tracks it embeds, when, batched."""
from __future__ import annotations

import numpy as np
import pytest

from spoton.live.identity import AppearanceSampler
from spoton.perception.config import PerceptionConfig
from spoton.records import CameraFrameResult, Detections, Tracks


class Counting:
    """The real embedder, counting its calls and crops."""

    def __init__(self, embedder) -> None:
        self.embedder, self.calls, self.crops = embedder, 0, 0

    def embed(self, frame, xyxy):
        self.calls += 1
        self.crops += len(xyxy)
        return self.embedder.embed(frame, xyxy)


@pytest.fixture(scope="module")
def embedder(cache_dir):
    return Counting(PerceptionConfig(threads=1, cache_dir=cache_dir).build_embedder())


def people(track_ids: list[int], heights: list[float] | None = None) -> CameraFrameResult:
    n = len(track_ids)
    heights = heights or [100.0] * n
    xyxy = np.array([[40 + 60 * i, 200, 80 + 60 * i, 200 + h] for i, h in enumerate(heights)], np.float32)
    tracks = Tracks(xyxy.reshape(n, 4), np.array(track_ids), np.full(n, 0.9), np.zeros(n), np.arange(n))
    return CameraFrameResult("cam1", 0, 0.0, (768, 576), Detections.empty(), tracks, np.zeros((n, 2)))


def test_new_tracks_at_once_then_every_n_frames_batched_and_capped(embedder, frame_100):
    sampler = AppearanceSampler(embedder, every_n_frames=3, max_crops=2)
    first = sampler.sample({"cam1": people([1, 2, 3])}, {"cam1": frame_100})
    assert sorted(first["cam1"]) == [0, 1] and embedder.calls == 1  # capped at 2, in one call
    vectors = np.stack(list(first["cam1"].values()))
    assert vectors.shape == (2, 1280) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    second = sampler.sample({"cam1": people([1, 2, 3])}, {"cam1": frame_100})
    assert list(second["cam1"]) == [2]  # the one left waiting; 1 and 2 are not due yet
    assert sampler.sample({"cam1": people([1, 2, 3])}, {"cam1": frame_100}) == {}
    due = sampler.sample({"cam1": people([1, 2, 3, 4], [100, 100, 100, 10])}, {"cam1": frame_100})
    assert sorted(due["cam1"]) == [0, 1]  # 3 frames on: 1 and 2 again; 4 is too small to crop
    assert sampler.crops == embedder.crops == 5 and sampler.seconds > 0
    with pytest.raises(ValueError):
        AppearanceSampler(embedder, every_n_frames=0)
