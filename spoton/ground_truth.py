"""Ground truth for the sample environment, derived from the real PETS 2009 S2.L1 annotation.

The real annotation (MOTChallenge text, frames 0..399 of the source view) boxes each person in
the source frame. Each virtual camera sees the source through its own perspective warp, so a
camera's ground truth is the source boxes warped by that camera (clipped to its image, kept
where at least half of the box is visible), with the PETS person ids kept as *global* ids: one
real person has one id in every camera. Each box also carries the person's true map position,
the source foot point (bottom centre) taken to the ground plane by the real Tsai calibration,
independent of the camera homographies under test.

Store layout (beside the environment's videos)::

    {env}/ground_truth/{camera}.txt     MOTChallenge text; frame = environment frame + 1,
                                        world x, y = map metres
    {env}/ground_truth/manifest.json    the frame span the annotation covers, its source

Frames on the environment clock equal source frames (a camera's own frame i is environment
frame i + its start offset).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spoton.evaluation.mot import MotBoxes
from spoton.sample_env import REPO_ROOT, TSAI_XML, EnvironmentConfig
from spoton.store import ObjectStore
from spoton.tsai import TsaiCamera

SOURCE_GT_NAME = "gt_view1_frames0000-0399.txt"
SOURCE_GT_FRAMES = (0, 400)  # [start, stop) source frames the PETS development annotation covers


def shared_source_ground_truth() -> Path | None:
    """The development annotation in the shared oracle folder (``$SPOTON_SHARED/pets``), if present."""
    shared = Path(os.environ.get("SPOTON_SHARED", REPO_ROOT.parent / "shared"))
    path = shared / "pets" / SOURCE_GT_NAME
    return path if path.is_file() else None


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


def foot_points_to_map(tsai: TsaiCamera, xyxy: np.ndarray) -> np.ndarray:
    """Bottom-centre of source boxes -> ground-plane metres (the environment's map frame)."""
    foot = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]])
    return tsai.image_to_ground(foot) / 1000.0


def derive_camera_ground_truth(config: EnvironmentConfig, source_gt: MotBoxes,
                               tsai: TsaiCamera | None = None) -> dict[str, MotBoxes]:
    """Warp source-frame ground truth into every camera of the sample environment."""
    tsai = tsai or TsaiCamera.from_xml(TSAI_XML)
    map_xy = foot_points_to_map(tsai, source_gt.xyxy)
    cameras = {}
    for camera in config.cameras:
        seen = source_gt.frame >= camera.start_offset_frames  # the camera has not started before
        boxes, kept = camera.source_boxes_to_camera(source_gt.xyxy[seen])
        rows = np.flatnonzero(seen)[kept]
        cameras[camera.name] = MotBoxes.create(source_gt.frame[rows], source_gt.ids[rows], boxes,
                                               np.ones(len(rows)), map_xy[rows])
    return cameras


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


def sample_environment_ground_truth(config: EnvironmentConfig, source_gt_path: Path,
                                    max_source_frames: int | None = None) -> GroundTruth:
    """Ground truth of the sample environment from the PETS annotation file."""
    source_gt = MotBoxes.read_mot(source_gt_path)
    stop = SOURCE_GT_FRAMES[1] if max_source_frames is None else min(SOURCE_GT_FRAMES[1], max_source_frames)
    source_gt = source_gt.select(source_gt.frame < stop)
    return GroundTruth(derive_camera_ground_truth(config, source_gt), (SOURCE_GT_FRAMES[0], stop),
                       source=f"PETS 2009 S2.L1 view 1 annotation ({source_gt_path.name}) warped per camera")
