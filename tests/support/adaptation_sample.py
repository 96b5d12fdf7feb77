"""The sample environment's real tracklets for the appearance adaptation tests.

``tests/fixtures/sample_tracklets_adaptation.npz``: the first two segments of the 400-frame build
(``python -m orchestration.demo --max-source-frames 400``: frames 0..199, three cameras): each
box's tracklet, frame and map position, each tracklet's MobileNetV2 embedding (float16) and the
ground-truth person its boxes mostly match (IoU 0.5; -1 where none), which only scoring reads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FIXTURE = Path(__file__).parents[1] / "fixtures" / "sample_tracklets_adaptation.npz"


def load_adaptation_sample() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """(boxes: tracklet_id, camera, segment, track_id, global_frame, map_x, map_y;
    embeddings: tracklet_id, embedding; tracklet_id -> ground-truth person)."""
    with np.load(FIXTURE) as npz:
        data = {k: npz[k] for k in npz.files}
    parts = pd.Series(data["box_tracklet"]).str.split("/", expand=True)  # camera/segment/track[.piece]
    boxes = pd.DataFrame({"tracklet_id": data["box_tracklet"], "camera": parts[0], "segment": parts[1],
                          "track_id": parts[2].str.split(".").str[0].astype(int), "global_frame": data["box_frame"],
                          "map_x": data["box_map"][:, 0], "map_y": data["box_map"][:, 1]})
    embeddings = pd.DataFrame({"tracklet_id": data["tracklet_ids"],
                               "embedding": list(data["embeddings"].astype(np.float32))})
    return boxes, embeddings, dict(zip(data["tracklet_ids"], data["person"].tolist()))
