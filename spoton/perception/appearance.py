"""One appearance vector per tracklet: the normalised mean of its best crops' embeddings.

A single crop is a noisy view of a person (pose, occlusion, blur); averaging a few good ones
spread over the tracklet's life is what makes MobileNetV2's weak features usable for identity.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd

from spoton.models.base import Embedder
from spoton.video import VideoFrame

# Defaults of the batch pipeline's tracklet appearance (docs/benchmarks.md): 4 crops, each resized to
# a small person-shaped 64x128 (w x h) MobileNetV2 input, cost ~1/5 of 8 crops at 224x224 and
# gave the same cross-camera IDF1 (and were less sensitive to the crop count).
CROPS_PER_TRACKLET = 4
TRACKLET_CROP_SIZE = (64, 128)


def select_crops(tracks: pd.DataFrame, per_tracklet: int) -> pd.DataFrame:
    """The best boxes of each tracklet to embed: confident, tall, spread over its life.

    ``tracks``: rows with tracklet_id, camera, frame_index, x1..y2, conf. Each tracklet's life is
    cut into ``per_tracklet`` equal parts and each part gives its box of highest conf x height.
    """
    frame = tracks[["tracklet_id", "camera", "frame_index", "x1", "y1", "x2", "y2", "conf"]]
    frame = frame.assign(quality=frame["conf"] * (frame["y2"] - frame["y1"]))
    chosen = []
    for _, boxes in frame.groupby("tracklet_id", sort=True):
        boxes = boxes.sort_values("frame_index", kind="mergesort")
        quality = boxes["quality"].to_numpy()
        for rows in np.array_split(np.arange(len(boxes)), min(len(boxes), per_tracklet)):
            chosen.append(boxes.index[rows[np.argmax(quality[rows])]])
    return frame.loc[chosen].reset_index(drop=True)


def embed_tracklets(tracks: pd.DataFrame, frames_of: Callable[[str, int], Iterable[VideoFrame]],
                    embedder: Embedder, per_tracklet: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """(tracklet_id -> unit mean embedding, tracklet_id -> crops embedded).

    ``frames_of(camera, stop)`` yields that camera's decoded frames up to frame index ``stop``
    (exclusive); each camera's video is decoded once, front to back.
    """
    crops = select_crops(tracks, per_tracklet)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for camera, camera_crops in crops.groupby("camera"):
        camera_crops = camera_crops.sort_values("frame_index", kind="mergesort")
        frame_index = camera_crops["frame_index"].to_numpy()
        xyxy = camera_crops[["x1", "y1", "x2", "y2"]].to_numpy(np.float32)
        tracklet_ids = camera_crops["tracklet_id"].to_numpy()
        for frame in frames_of(str(camera), int(frame_index[-1]) + 1):
            first, last = np.searchsorted(frame_index, [frame.index, frame.index + 1])
            if first == last:
                continue
            vectors = embedder.embed(frame.image, xyxy[first:last])
            for tracklet, vector in zip(tracklet_ids[first:last], vectors):
                sums[tracklet] = sums.get(tracklet, 0) + vector
                counts[tracklet] = counts.get(tracklet, 0) + 1
    means = {t: (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32) for t, v in sums.items()}
    return means, counts
