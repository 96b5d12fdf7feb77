"""An environment's ground truth in the store: per-camera boxes with global ids and map positions.

Any environment may carry one (the sample derives its own from the PETS annotation:
:mod:`spoton.sample.ground_truth`). Store layout (beside the environment's videos)::

    {env}/ground_truth/{camera}.txt     MOTChallenge text; frame = environment frame + 1,
                                        world x, y = map metres
    {env}/ground_truth/manifest.json    the frame span the annotation covers, its source
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from spoton.evaluation.mot import MotBoxes
from spoton.storage.store import ObjectStore


@dataclass(frozen=True)
class GroundTruth:
    """Per-camera ground truth of one environment and the environment frames it covers."""

    cameras: dict[str, MotBoxes]
    frames: tuple[int, int]  # [start, stop) on the environment clock
    source: str

    def frames_of(self, camera: str, processed: np.ndarray) -> np.ndarray:
        """The processed environment frames of ``camera`` that the annotation covers."""
        processed = np.asarray(processed, np.int64)
        return processed[(processed >= self.frames[0]) & (processed < self.frames[1])]


def write_ground_truth(store: ObjectStore, environment: str, truth: GroundTruth) -> list[str]:
    keys = []
    for camera, boxes in truth.cameras.items():
        key = f"{environment}/ground_truth/{camera}.txt"
        store.write_bytes(key, boxes.to_mot().encode())
        keys.append(key)
    manifest = {"frames": list(truth.frames), "source": truth.source,
                "format": "MOTChallenge: frame (environment frame + 1), global id, left, top, width, height, "
                          "1, map x (m), map y (m), -1"}
    store.write_bytes(f"{environment}/ground_truth/manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return keys


def load_ground_truth(store: ObjectStore, environment: str) -> GroundTruth | None:
    """The environment's ground truth from the store, or None when it has none."""
    manifest_key = f"{environment}/ground_truth/manifest.json"
    if not store.exists(manifest_key):
        return None
    manifest = json.loads(store.read_bytes(manifest_key))
    cameras = {}
    for key in store.list_keys(f"{environment}/ground_truth/"):
        if key.endswith(".txt"):
            camera = key.rsplit("/", 1)[1][:-len(".txt")]
            cameras[camera] = MotBoxes.parse_mot(store.read_bytes(key).decode(), source=f"{store.uri}/{key}")
    return GroundTruth(cameras, tuple(manifest["frames"]), manifest.get("source", ""))
