"""Where an environment's files live in the object store, and loading its configuration from there.

Store layout::

    {env}/environment.json              cameras, clock offsets, floor plan, zones
    {env}/floor_plan.png
    {env}/calibration/{camera}.json     image points (px) <-> map points (m)
    {env}/{camera}/sub_video_NN.mp4     the camera's consecutive segments
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from spoton.sample_env import EnvironmentConfig, EnvironmentConfigError, load_environment
from spoton.store import ObjectStore

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


def load_environment_from_store(store: ObjectStore, environment: str) -> EnvironmentConfig:
    """Read ``{env}/environment.json``, its calibration files and floor plan (downloaded once if remote)."""
    config_key = f"{environment}/environment.json"
    if not store.exists(config_key):
        raise EnvironmentConfigError(
            f"{store.uri}/{config_key} is missing: every environment needs an environment.json beside "
            "its camera folders (see data/environments/pets_s2l1 for an example)")
    for key in store.list_keys(f"{environment}/calibration/") + [f"{environment}/floor_plan.png"]:
        if store.exists(key):
            store.local_path(key)  # a local copy beside environment.json
    return load_environment(store.local_path(config_key).parent)
