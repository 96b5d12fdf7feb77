"""Where an environment's files live in the object store, and the clock its frames tables sample.

Store layout::

    {env}/environment/versions/NNNNNN.json  the environment's saved versions (spoton.site.storage)
    {env}/environment/current.json          the current version
    {env}/floor_plan.png                    the floor-plan image (its key is in the environment)
    {env}/{camera}/sub_video_NN.mp4         the camera's consecutive segments
    {env}/ground_truth/                     optional: per-camera ground truth (spoton.ground_truth)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from spoton.storage.store import ObjectStore

SUB_VIDEO_PATTERN = re.compile(r"^(?P<env>[^/]+)/(?P<camera>[^/]+)/sub_video_(?P<segment>\d{2,})\.mp4$")


@dataclass(frozen=True)
class FrameClock:
    """How a frames table samples the environment clock: every ``step``-th frame of an ``fps`` clock."""

    step: int
    fps: float

    @classmethod
    def of(cls, global_frame, ts) -> "FrameClock":
        """From a frames table's ``global_frame`` and ``ts`` columns (``ts = global_frame / fps``)."""
        global_frame, ts = np.asarray(global_frame, np.int64), np.asarray(ts, np.float64)
        grid = np.unique(global_frame)
        step = int(np.median(np.diff(grid))) if len(grid) > 1 else 1
        moving = ts > 0
        fps = float(np.median(global_frame[moving] / ts[moving])) if moving.any() else 1.0
        return cls(step, fps)


def sub_video_key(environment: str, camera: str, segment: str) -> str:
    return f"{environment}/{camera}/sub_video_{segment}.mp4"


def scan_sub_videos(store: ObjectStore) -> dict[str, dict[str, set[str]]]:
    """``{environment: {segment: {camera, ...}}}`` for every sub-video in the store."""
    found: dict[str, dict[str, set[str]]] = {}
    for key in store.list_keys():
        match = SUB_VIDEO_PATTERN.match(key)
        if match and match["camera"] != "calibration":
            found.setdefault(match["env"], {}).setdefault(match["segment"], set()).add(match["camera"])
    return found
