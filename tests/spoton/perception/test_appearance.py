"""Tracklet appearance: which crops are embedded, and the averaged vector per tracklet."""
from __future__ import annotations

import numpy as np
import pandas as pd

from spoton.perception.appearance import embed_tracklets, select_crops
from spoton.video import VideoFrame

RED, BLUE = (0, 0, 255), (255, 0, 0)  # BGR


class MeanColourEmbedder:
    """A real (if simple) Embedder: the unit mean BGR colour of each crop."""

    dim = 3

    def embed(self, frame: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        out = [frame[int(y1):int(y2), int(x1):int(x2)].reshape(-1, 3).mean(axis=0) for x1, y1, x2, y2 in xyxy]
        out = np.asarray(out, np.float32).reshape(-1, 3)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _tracks(n_frames: int) -> pd.DataFrame:
    rows = []
    for index in range(n_frames):
        rows.append(dict(tracklet_id="cam1/01/1", camera="cam1", frame_index=index, x1=10, y1=10, x2=30, y2=60,
                         conf=0.5 + 0.01 * index))
        rows.append(dict(tracklet_id="cam1/01/2", camera="cam1", frame_index=index, x1=50, y1=10, x2=70, y2=60,
                         conf=0.9 - 0.01 * index))
    return pd.DataFrame(rows)


def test_crops_are_spread_over_the_life_and_best_in_each_part():
    crops = select_crops(_tracks(20), per_tracklet=4)
    assert crops.groupby("tracklet_id").size().tolist() == [4, 4]
    # conf rises along tracklet 1 and falls along 2: the last / first frame of each quarter of its life
    assert crops[crops["tracklet_id"] == "cam1/01/1"]["frame_index"].tolist() == [4, 9, 14, 19]
    assert crops[crops["tracklet_id"] == "cam1/01/2"]["frame_index"].tolist() == [0, 5, 10, 15]
    assert len(select_crops(_tracks(2), per_tracklet=8)) == 4  # never more crops than boxes


def test_each_tracklet_gets_the_mean_of_its_crops_and_each_video_is_decoded_once():
    image = np.zeros((80, 100, 3), np.uint8)
    image[10:60, 10:30] = RED
    image[10:60, 50:70] = BLUE
    decoded: list[tuple[str, int]] = []

    def frames_of(camera: str, stop: int):
        decoded.append((camera, stop))
        return (VideoFrame(index=i, ts=i / 7, image=image) for i in range(stop))

    means, counts = embed_tracklets(_tracks(20), frames_of, MeanColourEmbedder(), per_tracklet=4)
    assert decoded == [("cam1", 20)]  # up to the last crop's frame, once
    assert counts == {"cam1/01/1": 4, "cam1/01/2": 4}
    np.testing.assert_allclose(means["cam1/01/1"], [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(means["cam1/01/2"], [1, 0, 0], atol=1e-6)
