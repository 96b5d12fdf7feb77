"""The sample environment's builder: its committed config and its sub-videos in a store.

Two entry points:

- :func:`write_environment_config` regenerates the committed, deterministic config
  (``environment.json`` with the virtual cameras' warps, ``calibration/{camera}.json``,
  ``floor_plan.png``) in the first stored form (:mod:`spoton.site.legacy`);
- :func:`build_sample_environment` decodes the source video once, writes every camera's
  sub-videos (``{store}/{env}/{camera}/sub_video_NN.mp4``) and saves the environment, in the
  general model, as a version in the store (:mod:`spoton.site.storage`).

World axes: metres on the ground plane, the PETS world frame scaled by 1/1000 (X, Y as in
the calibration; Z = 0 is the ground). On the floor-plan image +X runs to the right and
+Y runs up (pixel rows grow toward -Y).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spoton.errors import SpotOnError
from spoton.geometry import Homography, Zone
from spoton.sample import DATA_DIR, ENV_NAME
from spoton.sample.floor_plan import ZONES_M, draw_floor_plan, floor_plan_around
from spoton.sample.virtual_cameras import (
    SOURCE_FPS, SOURCE_SIZE, VirtualCamera, rounded, calibration_points, camera_footprint_m, default_cameras,
    ground_check_error_m, vertical_vanishing_point,
)
from spoton.site import legacy
from spoton.site.model import Environment, EnvironmentConfigError
from spoton.site.storage import save_environment
from spoton.storage.store import LocalStore
from spoton.tsai import TsaiCamera
from spoton.video import H264Writer, iter_frames, probe

DEFAULT_CONFIG_DIR = DATA_DIR / "environments" / ENV_NAME
TSAI_XML = DATA_DIR / "calibration" / "pets_s2l1_view_001.xml"
SOURCE_VIEW_CALIBRATION = DATA_DIR / "calibration" / "pets_s2l1_view_001.json"
SOURCE_FRAME_COUNT = 795
SEGMENTS = 4


@dataclass(frozen=True, eq=False)
class SegmentSpan:
    """Which source frames one camera's sub-video holds: source ``[source_start, source_stop)``,
    camera frame of its first frame ``camera_start``."""

    camera: str
    index: int  # 1-based: sub_video_01 ...
    source_start: int
    source_stop: int

    camera_start: int = 0

    @property
    def frame_count(self) -> int:
        return max(0, self.source_stop - self.source_start)

    @property
    def filename(self) -> str:
        return sub_video_name(self.index)


def dumps_json(value, indent: int = 2, _level: int = 0) -> str:
    """JSON with lists of numbers (points, matrix rows) kept on one line."""
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dumps_json(v, indent, _level + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return json.dumps(list(value))
        if all(isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v)
               for v in value) and sum(len(v) for v in value) <= 12:
            return json.dumps([list(v) for v in value])
        items = [f"{inner}{dumps_json(v, indent, _level + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value)


def sub_video_name(index: int) -> str:
    return f"sub_video_{index:02d}.mp4"


def segment_bounds(source_frame_count: int, segments: int = SEGMENTS) -> list[tuple[int, int]]:
    """Split source frames ``[0, n)`` into ``segments`` contiguous spans; the last takes the rest.

    Boundaries are the same instants for every camera (a recorder cutting files on the
    wall clock), so a camera that starts late has a shorter first sub-video.
    """
    if source_frame_count < segments:
        raise EnvironmentConfigError(
            f"{source_frame_count} source frames cannot be cut into {segments} sub-videos: "
            f"give at least {segments} frames")
    length = source_frame_count // segments
    starts = [k * length for k in range(segments)] + [source_frame_count]
    return [(starts[k], starts[k + 1]) for k in range(segments)]


def segment_plan(cameras, source_frame_count: int, segments: int = SEGMENTS
                 ) -> dict[str, list[SegmentSpan]]:
    plan: dict[str, list[SegmentSpan]] = {}
    for camera in cameras:
        spans = []
        for k, (start, stop) in enumerate(segment_bounds(source_frame_count, segments), start=1):
            first = max(start, camera.start_offset_frames)
            spans.append(SegmentSpan(camera.name, k, first, max(first, stop),
                                     first - camera.start_offset_frames))
        plan[camera.name] = spans
    return plan

def build_environment_config(tsai_xml: Path = TSAI_XML) -> tuple[dict, dict[str, dict], np.ndarray]:
    """Compute ``(environment.json dict, {camera: calibration dict}, floor-plan BGR image)``."""
    tsai = TsaiCamera.from_xml(tsai_xml)
    cameras = default_cameras(tsai)
    zones = tuple(Zone(name, np.asarray(poly, float)) for name, poly in ZONES_M.items())
    floor_plan = floor_plan_around(cameras, zones)

    calibrations: dict[str, dict] = {}
    for camera in cameras:
        image_points, map_points = calibration_points(camera, tsai)
        homography = Homography.from_point_pairs(image_points, map_points)
        rms, worst = ground_check_error_m(camera, homography, tsai)
        calibrations[camera.name] = {
            "camera": camera.name,
            "units": "m",
            "image_size": list(camera.size),
            "image_points": image_points.tolist(),
            "map_points": map_points.tolist(),
            "reprojection_error_m": round(homography.reprojection_error_m, 4),
            "ground_check_rms_m": round(rms, 4),
            "ground_check_max_m": round(worst, 4),
            "vertical_vanishing_point": rounded(vertical_vanishing_point(camera, tsai, image_points), 1),
            "source": "camera px -> source px (inverse warp) -> PETS 2009 S2.L1 View_001 Tsai "
                      "model (lens distortion included) -> ground plane Z=0, mm / 1000",
        }

    environment = {
        "name": ENV_NAME,
        "description": "Virtual multi-camera environment cut from PETS 2009 S2.L1 view 1: "
                       "each camera is a perspective warp of an overlapping part of the real frame",
        "source": {
            "video": "vtest.avi = PETS 2009 S2.L1 view 1 (Debian opencv-doc examples)",
            "size": list(SOURCE_SIZE),
            "fps": SOURCE_FPS,
            "frame_count": SOURCE_FRAME_COUNT,
            "calibration": "data/calibration/pets_s2l1_view_001.xml (Tsai, mm, ground Z=0)",
        },
        "fps": SOURCE_FPS,
        "world": "metres on the ground plane: PETS world X, Y (mm) / 1000",
        "cameras": [c.to_json() for c in cameras],
        "segments": {
            "count": SEGMENTS,
            "rule": "source frames [0, n) cut into count contiguous spans of n // count frames "
                    "(the last takes the remainder) at the same instants for every camera; a "
                    "camera starting late has a shorter first sub-video",
            "source_frame_spans": [list(s) for s in segment_bounds(SOURCE_FRAME_COUNT, SEGMENTS)],
        },
        "floor_plan": legacy.floor_plan_to_json(floor_plan),
        "zones": [{"name": z.name, "polygon_m": rounded(z.polygon_m, 3)} for z in zones],
    }
    return environment, calibrations, draw_floor_plan(floor_plan, cameras, zones)



def source_view_calibration(tsai_xml: Path = TSAI_XML) -> dict:
    """A calibration file for the real source view itself (what ``spoton track --calibration``
    reads): image/map point pairs as for the virtual cameras, plus ``region_m``, the ground it
    tracks (below :data:`GROUND_MIN_SOURCE_ROW`)."""
    tsai = TsaiCamera.from_xml(tsai_xml)
    view = VirtualCamera("view_001", SOURCE_SIZE, np.eye(3))
    image_points, map_points = calibration_points(view, tsai)
    homography = Homography.from_point_pairs(image_points, map_points)
    rms, worst = ground_check_error_m(view, homography, tsai)
    return {"camera": view.name, "units": "m", "image_size": list(SOURCE_SIZE),
            "image_points": image_points.tolist(), "map_points": map_points.tolist(),
            "reprojection_error_m": round(homography.reprojection_error_m, 4),
            "ground_check_rms_m": round(rms, 4), "ground_check_max_m": round(worst, 4),
            "region_m": rounded(camera_footprint_m(view, tsai), 3),
            "source": "PETS 2009 S2.L1 View_001 Tsai model (lens distortion included) -> ground plane Z=0, mm / 1000"}


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_environment_config(out_dir: Path = DEFAULT_CONFIG_DIR,
                             tsai_xml: Path = TSAI_XML) -> list[Path]:
    """(Re)generate ``environment.json``, ``calibration/{camera}.json`` and ``floor_plan.png``
    in ``out_dir``, deterministically. Returns the written paths."""
    out_dir = Path(out_dir)
    environment, calibrations, floor_plan_image = build_environment_config(tsai_xml)
    written = []
    path = out_dir / "environment.json"
    _write_text(path, dumps_json(environment) + "\n")
    written.append(path)
    for name, calibration in calibrations.items():
        path = out_dir / "calibration" / f"{name}.json"
        _write_text(path, dumps_json(calibration) + "\n")
        written.append(path)
    _write_text(SOURCE_VIEW_CALIBRATION, dumps_json(source_view_calibration(tsai_xml)) + "\n")
    written.append(SOURCE_VIEW_CALIBRATION)
    path = out_dir / "floor_plan.png"
    ok, encoded = cv2.imencode(".png", floor_plan_image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, path)
    written.append(path)
    return written


def load_sample_environment(config_dir: Path = DEFAULT_CONFIG_DIR) -> Environment:
    """The committed config as a general :class:`Environment` (its warps are not part of it)."""
    config_dir = Path(config_dir)
    return legacy.read_environment(LocalStore(config_dir.parent), config_dir.name)


def load_sample_cameras(config_dir: Path = DEFAULT_CONFIG_DIR) -> tuple[VirtualCamera, ...]:
    """The committed config's virtual cameras, with the warps the builder and ground truth need."""
    path = Path(config_dir) / "environment.json"
    try:
        return tuple(VirtualCamera.from_json(c) for c in json.loads(path.read_text())["cameras"])
    except FileNotFoundError:
        raise EnvironmentConfigError(f"{path} does not exist: regenerate the sample config with "
                                     "spoton.sample.builder.write_environment_config") from None


# ----------------------------------------------------------------------------------------
# video builder
# ----------------------------------------------------------------------------------------
def _existing_ok(path: Path, expected_frames: int) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        info = probe(path)
    except SpotOnError:
        return False
    return info.codec == "h264" and int(info.frame_count) == expected_frames


def build_sample_environment(source_video: Path, store_root: Path, env: str = ENV_NAME, *,
                             config_dir: Path = DEFAULT_CONFIG_DIR,
                             max_source_frames: int | None = None,
                             force: bool = False) -> list[Path]:
    """Write every camera's sub-videos into an object-store folder and save the environment there.

    Layout: ``{store_root}/{env}/{camera}/sub_video_NN.mp4`` (H.264, native fps), the floor-plan
    image ``{store_root}/{env}/floor_plan.png`` and the environment as a version
    (:func:`spoton.site.storage.save_environment`; an unchanged one is not saved again). The
    source is decoded once; each frame is warped for every camera whose output is missing.
    Outputs that exist and probe as H.264 with the expected frame count are kept unless
    ``force``. ``max_source_frames`` builds from a prefix of the source (the sub-videos then
    split that prefix). Returns the video paths (written or kept).
    """
    source_video, config_dir = Path(source_video), Path(config_dir)
    environment = dataclasses.replace(load_sample_environment(config_dir), name=env)
    cameras = load_sample_cameras(config_dir)
    info = probe(source_video)
    if (int(info.width), int(info.height)) != SOURCE_SIZE:
        raise EnvironmentConfigError(
            f"{source_video} is {info.width}x{info.height} but the sample environment warps "
            f"a {SOURCE_SIZE} source: give the PETS 2009 S2.L1 view 1 video (vtest.avi)")
    n = int(info.frame_count)
    if max_source_frames is not None:
        n = min(n, int(max_source_frames))
    plan = segment_plan(cameras, n, SEGMENTS)

    store = LocalStore(store_root)
    env_dir = store.root / env
    image_key = environment.floor_plan.image_key
    if image_key is not None and (config_dir / image_key).is_file():
        store.upload_file(config_dir / image_key, f"{env}/{image_key}")
    save_environment(store, environment)

    outputs: list[Path] = []
    todo: list[tuple[VirtualCamera, SegmentSpan, Path]] = []
    for camera in cameras:
        for span in plan[camera.name]:
            if span.frame_count == 0:  # a late camera with nothing in this span (tiny slices)
                continue
            path = env_dir / camera.name / span.filename
            outputs.append(path)
            if force or not _existing_ok(path, span.frame_count):
                todo.append((camera, span, path))
    if not todo:
        return outputs

    first = min(span.source_start for _, span, _ in todo)
    last = max(span.source_stop for _, span, _ in todo)
    open_writers: dict[Path, H264Writer] = {}
    done: set[Path] = set()
    try:
        for frame in iter_frames(source_video, start=first, stop=last):
            index = frame.index
            views: dict[str, np.ndarray] = {}
            for camera, span, path in todo:
                if not span.source_start <= index < span.source_stop:
                    continue
                writer = open_writers.get(path)
                if writer is None:  # H264Writer writes a temp file, moved into place on close
                    writer = open_writers[path] = H264Writer(path, environment.fps, size=camera.size)
                if camera.name not in views:
                    views[camera.name] = camera.warp_image(frame.image)
                writer.write(views[camera.name])
                if index == span.source_stop - 1:
                    open_writers.pop(path).close()
                    done.add(path)
        incomplete = [str(path) for _, _, path in todo if path not in done]
        if incomplete:
            raise EnvironmentConfigError(
                f"{source_video} ended before source frame {last - 1}, leaving "
                f"{', '.join(incomplete)} unwritten: is the source video truncated?")
    finally:
        for writer in open_writers.values():
            writer.abort()
    return outputs
