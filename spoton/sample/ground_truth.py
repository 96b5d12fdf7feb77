"""The sample environment's ground truth, derived from the real PETS 2009 S2.L1 annotation.

The real annotation (MOTChallenge text, frames 0..399 of the source view) boxes each person in
the source frame. Each virtual camera sees the source through its own perspective warp, so a
camera's ground truth is the source boxes warped by that camera (clipped to its image, kept
where at least half of the box is visible), with the PETS person ids kept as *global* ids: one
real person has one id in every camera. Each box also carries the person's true map position,
the source foot point (bottom centre) taken to the ground plane by the real Tsai calibration,
independent of the camera homographies under test.

Frames on the environment clock equal source frames (a camera's own frame i is environment
frame i + its start offset).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spoton.evaluation.mot import MotBoxes
from spoton.ground_truth import GroundTruth
from spoton.sample.builder import TSAI_XML
from spoton.sample.virtual_cameras import VirtualCamera
from spoton.tsai import TsaiCamera

SOURCE_GT_NAME = "gt_view1_frames0000-0399.txt"
SOURCE_GT_FRAMES = (0, 400)  # [start, stop) source frames the PETS development annotation covers


def shared_source_ground_truth(shared_dir: Path) -> Path | None:
    """The development annotation in the shared oracle folder (``{shared_dir}/pets``), if present."""
    path = Path(shared_dir) / "pets" / SOURCE_GT_NAME
    return path if path.is_file() else None


def foot_points_to_map(tsai: TsaiCamera, xyxy: np.ndarray) -> np.ndarray:
    """Bottom-centre of source boxes -> ground-plane metres (the environment's map frame)."""
    foot = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]])
    return tsai.image_to_ground(foot) / 1000.0


def derive_camera_ground_truth(cameras: tuple[VirtualCamera, ...], source_gt: MotBoxes,
                               tsai: TsaiCamera | None = None) -> dict[str, MotBoxes]:
    """Warp source-frame ground truth into every camera of the sample environment."""
    tsai = tsai or TsaiCamera.from_xml(TSAI_XML)
    map_xy = foot_points_to_map(tsai, source_gt.xyxy)
    truth = {}
    for camera in cameras:
        seen = source_gt.frame >= camera.start_offset_frames  # the camera has not started before
        boxes, kept = camera.source_boxes_to_camera(source_gt.xyxy[seen])
        rows = np.flatnonzero(seen)[kept]
        truth[camera.name] = MotBoxes.create(source_gt.frame[rows], source_gt.ids[rows], boxes,
                                             np.ones(len(rows)), map_xy[rows])
    return truth


def sample_environment_ground_truth(cameras: tuple[VirtualCamera, ...], source_gt_path: Path,
                                    max_source_frames: int | None = None) -> GroundTruth:
    """Ground truth of the sample environment from the PETS annotation file."""
    source_gt = MotBoxes.read_mot(source_gt_path)
    stop = SOURCE_GT_FRAMES[1] if max_source_frames is None else min(SOURCE_GT_FRAMES[1], max_source_frames)
    source_gt = source_gt.select(source_gt.frame < stop)
    return GroundTruth(derive_camera_ground_truth(cameras, source_gt), (SOURCE_GT_FRAMES[0], stop),
                       source=f"PETS 2009 S2.L1 view 1 annotation ({source_gt_path.name}) warped per camera")
