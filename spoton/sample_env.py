"""The sample multi-camera environment, built from one real calibrated video.

The sample video (``vtest.avi``) is view 1 of PETS 2009 S2.L1, with its real Tsai
calibration (``data/calibration/pets_s2l1_view_001.xml``). To exercise multi-camera
code on real footage, this module derives *virtual cameras* from it: each camera is a
perspective warp (3x3, source pixels -> camera pixels) of an overlapping quadrilateral
of the source frame onto a 640x480 image, so a person in an overlap is seen by two or
three cameras at once, at different positions, scales and orientations. One camera
starts a few frames later than the others (a real-world clock offset).

Each camera's calibration (camera pixels <-> ground metres) is the camera's inverse
warp composed with the real ground-plane mapping of the Tsai model; it is stored as
image-point / map-point pairs, the format :class:`spoton.geometry.Homography` reads.
The Tsai model has radial lens distortion, so a homography fitted to these pairs is
not exact: each calibration file records its reprojection error.

Two entry points:

- :func:`write_environment_config` regenerates the committed, deterministic config
  (``environment.json``, ``calibration/{camera}.json``, ``floor_plan.png``);
- :func:`build_sample_environment` decodes the source video once and writes every
  camera's sub-videos (``{store}/{env}/{camera}/sub_video_NN.mp4``) plus the calibration
  files into an object-store folder.

World axes: metres on the ground plane, the PETS world frame scaled by 1/1000 (X, Y as in
the calibration; Z = 0 is the ground). On the floor-plan image +X runs to the right and
+Y runs up (pixel rows grow toward -Y).
"""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spoton.errors import SpotOnError
from spoton.geometry import Homography, Zone, apply_homography
from spoton.processor import CameraSpec
from spoton.tsai import TsaiCamera
from spoton.video import H264Writer, iter_frames, probe

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_NAME = "pets_s2l1"
DEFAULT_CONFIG_DIR = REPO_ROOT / "data" / "environments" / ENV_NAME
TSAI_XML = REPO_ROOT / "data" / "calibration" / "pets_s2l1_view_001.xml"

SOURCE_SIZE = (768, 576)  # (w, h) of vtest.avi
SOURCE_FPS = 7.0
SOURCE_FRAME_COUNT = 795
CAMERA_SIZE = (640, 480)
SEGMENTS = 4

# Source rows above this see buildings or ground more than ~20 m away: calibration points
# and camera footprints use the ground below it only.
GROUND_MIN_SOURCE_ROW = 140.0
FLOOR_PLAN_PIXELS_PER_METRE = 20
FLOOR_PLAN_MARGIN_M = 2.0

# Source-frame quadrilaterals (top-left, top-right, bottom-right, bottom-left, source px)
# that each camera maps onto its full 640x480 image. The tilted / trapezoidal quads make the
# cameras look like different viewpoints; their overlaps cover the walkway crossing where
# the PETS pedestrians walk (source rows ~150..410).
CAMERA_QUADS: dict[str, tuple[tuple[float, float], ...]] = {
    # west: the left walkway and the crossing, rolled ~6 degrees
    "cam1": ((0.0, 100.0), (525.0, 58.0), (565.0, 405.0), (0.0, 450.0)),
    # east: the crossing and the road to the right, a different tilt
    "cam2": ((275.0, 62.0), (768.0, 100.0), (768.0, 448.0), (245.0, 425.0)),
    # centre: the whole crossing, seen "from further back" (trapezoid, narrow at the top)
    "cam3": ((195.0, 105.0), (610.0, 105.0), (768.0, 480.0), (55.0, 480.0)),
}
CAMERA_START_OFFSETS = {"cam1": 0, "cam2": 0, "cam3": 3}

# Named floor areas (metres) for occupancy / dwell analytics.
ZONES_M: dict[str, tuple[tuple[float, float], ...]] = {
    "crossing": ((-11.0, -10.5), (-5.0, -10.5), (-5.0, -3.5), (-11.0, -3.5)),
    "north_path": ((-10.0, -3.5), (-5.0, -3.5), (-5.0, 7.0), (-10.0, 7.0)),
    "east_road": ((-5.0, -11.5), (7.0, -11.5), (7.0, -5.5), (-5.0, -5.5)),
    "south_path": ((-15.0, -16.5), (-8.0, -16.5), (-8.0, -10.5), (-15.0, -10.5)),
}

CAMERA_COLOURS_BGR = [(40, 40, 220), (40, 150, 40), (200, 110, 20), (160, 40, 160), (0, 140, 220)]


class EnvironmentConfigError(SpotOnError):
    """An environment config that cannot be read or built."""


# ----------------------------------------------------------------------------------------
# config dataclasses
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CameraConfig:
    """One virtual camera: a perspective warp of the source frame.

    ``warp`` maps source pixels to camera pixels; camera frame ``i`` is source frame
    ``i + start_offset_frames``, i.e. camera time ``t`` is environment time
    ``t + time_offset_s``.
    """

    name: str
    size: tuple[int, int]  # (w, h)
    warp: np.ndarray
    start_offset_frames: int = 0
    time_offset_s: float = 0.0
    footprint_m: np.ndarray | None = None  # (K, 2) polygon of the visible ground, metres

    @property
    def inverse_warp(self) -> np.ndarray:
        return np.linalg.inv(self.warp)

    def source_to_camera(self, points: np.ndarray) -> np.ndarray:
        """Source pixels (N, 2) -> camera pixels (N, 2)."""
        return apply_homography(self.warp, points)

    def camera_to_source(self, points: np.ndarray) -> np.ndarray:
        """Camera pixels (N, 2) -> source pixels (N, 2)."""
        return apply_homography(self.inverse_warp, points)

    def warp_image(self, source_bgr: np.ndarray) -> np.ndarray:
        """Render this camera's view of a source frame."""
        return cv2.warpPerspective(source_bgr, self.warp, self.size, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    def source_boxes_to_camera(self, xyxy: np.ndarray, min_visible: float = 0.5
                               ) -> tuple[np.ndarray, np.ndarray]:
        """Map source-frame boxes (N, 4) to this camera: ``(boxes (M, 4), kept (N,) bool)``.

        Each box's 4 corners are warped, their bounding box taken and clipped to the
        image; a box is dropped when less than ``min_visible`` of its warped area lies
        inside the image (or it maps behind the warp's horizon).
        """
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        if len(xyxy) == 0:
            return np.zeros((0, 4)), np.zeros(0, bool)
        x1, y1, x2, y2 = xyxy.T
        corners = np.stack([np.column_stack(c) for c in
                            ((x1, y1), (x2, y1), (x2, y2), (x1, y2))], axis=1).reshape(-1, 2)
        homogeneous = np.column_stack([corners, np.ones(len(corners))]) @ self.warp.T
        w = homogeneous[:, 2].reshape(-1, 4)
        valid = np.all(w > 1e-9, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mapped = (homogeneous[:, :2] / homogeneous[:, 2:3]).reshape(-1, 4, 2)
        lo = mapped.min(axis=1)
        hi = mapped.max(axis=1)
        area = np.prod(hi - lo, axis=1)
        width, height = self.size
        clo = np.clip(lo, 0, [width, height])
        chi = np.clip(hi, 0, [width, height])
        clipped_area = np.prod(np.maximum(chi - clo, 0), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            visible = np.where(area > 0, clipped_area / area, 0.0)
        kept = valid & np.isfinite(visible) & (visible >= min_visible) & (clipped_area > 0)
        return np.column_stack([clo, chi])[kept], kept

    def to_json(self) -> dict:
        out = {
            "name": self.name,
            "size": list(self.size),
            "warp": _round(self.warp, 10),
            "start_offset_frames": self.start_offset_frames,
            "time_offset_s": self.time_offset_s,
        }
        if self.footprint_m is not None:
            out["footprint_m"] = _round(self.footprint_m, 3)
        return out

    @classmethod
    def from_json(cls, spec: dict) -> "CameraConfig":
        warp = np.asarray(spec["warp"], dtype=np.float64)
        if warp.shape != (3, 3):
            raise EnvironmentConfigError(
                f"camera {spec.get('name')!r}: warp must be a 3x3 matrix (source px -> camera px), "
                f"got shape {warp.shape}")
        footprint = spec.get("footprint_m")
        return cls(
            name=str(spec["name"]),
            size=(int(spec["size"][0]), int(spec["size"][1])),
            warp=warp,
            start_offset_frames=int(spec.get("start_offset_frames", 0)),
            time_offset_s=float(spec.get("time_offset_s", 0.0)),
            footprint_m=None if footprint is None else np.asarray(footprint, dtype=np.float64),
        )


@dataclass(frozen=True, eq=False)
class FloorPlan:
    """Floor-plan image and its metres -> pixels transform.

    ``origin_m`` is the world point (metres) at the image's top-left corner; pixel
    ``x = (X - origin_m[0]) * pixels_per_metre`` and ``y = (origin_m[1] - Y) * pixels_per_metre``
    (+X right, +Y up). ``map_to_pixel`` is the same as a 3x3 matrix.
    """

    origin_m: tuple[float, float]
    pixels_per_metre: float
    size_px: tuple[int, int]  # (w, h)
    map_to_pixel: np.ndarray
    image_path: Path | None = None

    @classmethod
    def from_bounds(cls, xmin: float, ymin: float, xmax: float, ymax: float,
                    pixels_per_metre: float = FLOOR_PLAN_PIXELS_PER_METRE,
                    image_path: Path | None = None) -> "FloorPlan":
        ppm = float(pixels_per_metre)
        matrix = np.array([[ppm, 0.0, -xmin * ppm], [0.0, -ppm, ymax * ppm], [0.0, 0.0, 1.0]])
        size = (int(round((xmax - xmin) * ppm)), int(round((ymax - ymin) * ppm)))
        return cls((float(xmin), float(ymax)), ppm, size, matrix, image_path)

    @property
    def bounds_m(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in metres."""
        xmin, ymax = self.origin_m
        return (xmin, ymax - self.size_px[1] / self.pixels_per_metre,
                xmin + self.size_px[0] / self.pixels_per_metre, ymax)

    def to_pixels(self, points_m: np.ndarray) -> np.ndarray:
        return apply_homography(self.map_to_pixel, points_m)

    def to_metres(self, pixels: np.ndarray) -> np.ndarray:
        return apply_homography(np.linalg.inv(self.map_to_pixel), pixels)

    def to_json(self) -> dict:
        out = {
            "origin_m": list(self.origin_m),
            "pixels_per_metre": self.pixels_per_metre,
            "size_px": list(self.size_px),
            "axes": "pixel x = (X - origin_m[0]) * pixels_per_metre, pixel y = (origin_m[1] - Y) "
                    "* pixels_per_metre: +X to the right, +Y up; origin_m is the world point at "
                    "the top-left image corner",
            "map_to_pixel": _round(self.map_to_pixel, 10),
        }
        if self.image_path is not None:
            out["image"] = self.image_path.name
        return out

    @classmethod
    def from_json(cls, spec: dict, config_dir: Path | None = None) -> "FloorPlan":
        image = spec.get("image")
        return cls(
            origin_m=(float(spec["origin_m"][0]), float(spec["origin_m"][1])),
            pixels_per_metre=float(spec["pixels_per_metre"]),
            size_px=(int(spec["size_px"][0]), int(spec["size_px"][1])),
            map_to_pixel=np.asarray(spec["map_to_pixel"], dtype=np.float64),
            image_path=(Path(config_dir) / image) if (image and config_dir) else None,
        )


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


@dataclass(frozen=True, eq=False)
class EnvironmentConfig:
    name: str
    fps: float
    cameras: tuple[CameraConfig, ...]
    segments: int
    floor_plan: FloorPlan
    zones: tuple[Zone, ...]
    source: dict
    config_dir: Path | None = None

    def camera(self, name: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise EnvironmentConfigError(
            f"environment {self.name!r} has no camera {name!r}; it has "
            f"{[c.name for c in self.cameras]}")

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def calibration_path(self, camera: str) -> Path:
        if self.config_dir is None:
            raise EnvironmentConfigError("this environment was not loaded from a folder")
        return self.config_dir / "calibration" / f"{camera}.json"

    def homography(self, camera: str) -> Homography:
        """The camera's pixels -> metres mapping, fitted from its calibration file."""
        return Homography.from_json(self.calibration_path(camera))

    def camera_spec(self, camera: str) -> CameraSpec:
        """What the FrameProcessor needs of a camera: its calibration and the ground it tracks
        (its footprint: beyond it the calibration extrapolates and people are too far to track)."""
        return CameraSpec(camera, self.homography(camera), region_m=self.camera(camera).footprint_m)

    def segment_plan(self, source_frame_count: int | None = None) -> dict[str, list[SegmentSpan]]:
        n = int(source_frame_count or self.source.get("frame_count", SOURCE_FRAME_COUNT))
        return segment_plan(self.cameras, n, self.segments)


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _round(array: np.ndarray, decimals: int) -> list:
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()


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


def quad_warp(quad, size: tuple[int, int] = CAMERA_SIZE) -> np.ndarray:
    """3x3 warp that maps a source quadrilateral (TL, TR, BR, BL) onto a ``size`` image."""
    w, h = size
    src = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    matrix = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    return matrix / matrix[2, 2]


def _clip_polygon(polygon: np.ndarray, xmin: float, ymin: float, xmax: float, ymax: float
                  ) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon (K, 2) to an axis-aligned rectangle."""
    def clip(points, inside, intersect):
        out = []
        for i in range(len(points)):
            cur, prev = points[i], points[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(intersect(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(intersect(prev, cur))
        return out

    def at_x(x):
        return lambda p, q: (x, p[1] + (q[1] - p[1]) * (x - p[0]) / (q[0] - p[0]))

    def at_y(y):
        return lambda p, q: (p[0] + (q[0] - p[0]) * (y - p[1]) / (q[1] - p[1]), y)

    points = [tuple(p) for p in np.asarray(polygon, dtype=np.float64)]
    for inside, intersect in (
        (lambda p: p[0] >= xmin, at_x(xmin)), (lambda p: p[0] <= xmax, at_x(xmax)),
        (lambda p: p[1] >= ymin, at_y(ymin)), (lambda p: p[1] <= ymax, at_y(ymax)),
    ):
        points = clip(points, inside, intersect)
        if not points:
            break
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def _densify(polygon: np.ndarray, step_px: float = 8.0) -> np.ndarray:
    out = []
    for i in range(len(polygon)):
        p, q = polygon[i], polygon[(i + 1) % len(polygon)]
        n = max(1, int(math.ceil(np.linalg.norm(q - p) / step_px)))
        out.extend(p + (q - p) * t for t in np.arange(n) / n)
    return np.asarray(out)


def visible_ground_source_polygon(camera: CameraConfig) -> np.ndarray:
    """Source-pixel polygon of the ground a camera sees (its quad, clipped to the source frame
    and to rows below :data:`GROUND_MIN_SOURCE_ROW`)."""
    w, h = camera.size
    corners = camera.camera_to_source(np.array([[0, 0], [w, 0], [w, h], [0, h]], float))
    sw, sh = SOURCE_SIZE
    return _clip_polygon(corners, 0.0, GROUND_MIN_SOURCE_ROW, float(sw), float(sh))


def camera_footprint_m(camera: CameraConfig, tsai: TsaiCamera) -> np.ndarray:
    """Polygon (K, 2), metres, of the ground a camera sees (edges follow the lens distortion)."""
    polygon = _densify(visible_ground_source_polygon(camera), step_px=32.0)
    return tsai.image_to_ground(polygon) / 1000.0


def _on_visible_ground(camera: CameraConfig, camera_px: np.ndarray) -> np.ndarray:
    source = camera.camera_to_source(camera_px)
    sw, sh = SOURCE_SIZE
    return ((source[:, 0] >= 0) & (source[:, 0] <= sw - 1) & (source[:, 1] >= GROUND_MIN_SOURCE_ROW)
            & (source[:, 1] <= sh - 1))


def calibration_points(camera: CameraConfig, tsai: TsaiCamera, min_points: int = 12,
                       max_points: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Image points (camera px) spread over the camera's visible ground and their ground
    positions (metres): camera px -> source px (inverse warp) -> Tsai ground plane."""
    w, h = camera.size
    for cols, rows in ((5, 4), (6, 5), (7, 6), (9, 8)):
        xs = np.linspace(0.06 * w, 0.94 * w, cols)
        ys = np.linspace(0.06 * h, 0.94 * h, rows)
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        grid = grid[_on_visible_ground(camera, grid)]
        if len(grid) >= min_points:
            break
    else:
        raise EnvironmentConfigError(
            f"camera {camera.name}: only {len(grid)} grid points see the ground; widen its quad")
    if len(grid) > max_points:
        grid = grid[np.round(np.linspace(0, len(grid) - 1, max_points)).astype(int)]
    image_points = np.round(grid, 1)
    map_points = np.round(tsai.image_to_ground(camera.camera_to_source(image_points)) / 1000.0, 4)
    return image_points, map_points


def ground_check_error_m(camera: CameraConfig, homography: Homography, tsai: TsaiCamera,
                         step_px: float = 16.0) -> tuple[float, float]:
    """(RMS, max) distance in metres between the homography and the true (Tsai) ground
    position over a dense grid of the camera's visible ground."""
    w, h = camera.size
    grid = np.stack(np.meshgrid(np.arange(step_px / 2, w, step_px),
                                np.arange(step_px / 2, h, step_px)), -1).reshape(-1, 2)
    grid = grid[_on_visible_ground(camera, grid)]
    truth = tsai.image_to_ground(camera.camera_to_source(grid)) / 1000.0
    error = np.linalg.norm(homography.to_map(grid) - truth, axis=1)
    return float(np.sqrt(np.mean(error**2))), float(error.max())


# ----------------------------------------------------------------------------------------
# config generation
# ----------------------------------------------------------------------------------------
def default_cameras(tsai: TsaiCamera | None = None, fps: float = SOURCE_FPS) -> tuple[CameraConfig, ...]:
    cameras = []
    for name, quad in CAMERA_QUADS.items():
        offset = CAMERA_START_OFFSETS.get(name, 0)
        camera = CameraConfig(name, CAMERA_SIZE, quad_warp(quad), offset, round(offset / fps, 6))
        if tsai is not None:
            camera = CameraConfig(camera.name, camera.size, camera.warp, camera.start_offset_frames,
                                  camera.time_offset_s, np.round(camera_footprint_m(camera, tsai), 3))
        cameras.append(camera)
    return tuple(cameras)


def _floor_plan_for(cameras, zones) -> FloorPlan:
    points = np.concatenate([c.footprint_m for c in cameras] + [z.polygon_m for z in zones])
    lo = np.floor(points.min(axis=0) - FLOOR_PLAN_MARGIN_M)
    hi = np.ceil(points.max(axis=0) + FLOOR_PLAN_MARGIN_M)
    return FloorPlan.from_bounds(lo[0], lo[1], hi[0], hi[1], FLOOR_PLAN_PIXELS_PER_METRE,
                                 image_path=Path("floor_plan.png"))


def draw_floor_plan(floor_plan: FloorPlan, cameras, zones) -> np.ndarray:
    """Render the floor plan (BGR): 1 m grid, labelled axes, camera footprints, zones."""
    w, h = floor_plan.size_px
    ppm = floor_plan.pixels_per_metre
    xmin, ymin, xmax, ymax = floor_plan.bounds_m
    image = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX

    for x in range(int(math.ceil(xmin)), int(math.floor(xmax)) + 1):
        px = int(round((x - xmin) * ppm))
        colour = (120, 120, 120) if x == 0 else (200, 200, 200) if x % 5 == 0 else (232, 232, 232)
        cv2.line(image, (px, 0), (px, h - 1), colour, 1)
    for y in range(int(math.ceil(ymin)), int(math.floor(ymax)) + 1):
        py = int(round((ymax - y) * ppm))
        colour = (120, 120, 120) if y == 0 else (200, 200, 200) if y % 5 == 0 else (232, 232, 232)
        cv2.line(image, (0, py), (w - 1, py), colour, 1)

    overlay = image.copy()
    for i, camera in enumerate(cameras):
        colour = CAMERA_COLOURS_BGR[i % len(CAMERA_COLOURS_BGR)]
        polygon = np.round(floor_plan.to_pixels(camera.footprint_m)).astype(np.int32)
        cv2.fillPoly(overlay, [polygon], colour, lineType=cv2.LINE_AA)
    image = cv2.addWeighted(overlay, 0.12, image, 0.88, 0)
    for i, camera in enumerate(cameras):
        colour = CAMERA_COLOURS_BGR[i % len(CAMERA_COLOURS_BGR)]
        polygon = np.round(floor_plan.to_pixels(camera.footprint_m)).astype(np.int32)
        cv2.polylines(image, [polygon], True, colour, 2, lineType=cv2.LINE_AA)

    for zone in zones:
        polygon = np.round(floor_plan.to_pixels(zone.polygon_m)).astype(np.int32)
        cv2.polylines(image, [polygon], True, (60, 60, 60), 1, lineType=cv2.LINE_AA)
        top_left = polygon[np.argmin(polygon[:, 0] + polygon[:, 1])]
        cv2.putText(image, zone.name, (int(top_left[0]) + 3, int(top_left[1]) + 13), font, 0.4,
                    (60, 60, 60), 1, cv2.LINE_AA)

    # axis labels every 5 m along the bottom and left edges
    for x in range(int(math.ceil(xmin / 5) * 5), int(xmax) + 1, 5):
        px = int(round((x - xmin) * ppm))
        if px > w - 110:
            continue
        cv2.putText(image, f"{x}", (px + 2, h - 6), font, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    for y in range(int(math.ceil(ymin / 5) * 5), int(ymax) + 1, 5):
        py = int(round((ymax - y) * ppm))
        if py < 45:
            continue
        cv2.putText(image, f"{y}", (3, py - 3), font, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.putText(image, "X (m) ->", (w - 90, h - 6), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "Y (m) ^", (3, 30), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)

    # legend
    x0, y0 = w - 150, 12
    cv2.rectangle(image, (x0 - 8, y0 - 6), (w - 6, y0 + 18 * len(cameras) + 20), (255, 255, 255), -1)
    cv2.rectangle(image, (x0 - 8, y0 - 6), (w - 6, y0 + 18 * len(cameras) + 20), (150, 150, 150), 1)
    for i, camera in enumerate(cameras):
        colour = CAMERA_COLOURS_BGR[i % len(CAMERA_COLOURS_BGR)]
        y = y0 + 18 * i + 8
        cv2.line(image, (x0, y), (x0 + 22, y), colour, 3)
        cv2.putText(image, f"{camera.name} footprint", (x0 + 28, y + 4), font, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    y = y0 + 18 * len(cameras) + 8
    cv2.line(image, (x0, y), (x0 + 22, y), (60, 60, 60), 1)
    cv2.putText(image, "zone", (x0 + 28, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "grid: 1 m", (10, 14), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def build_environment_config(tsai_xml: Path = TSAI_XML) -> tuple[dict, dict[str, dict], np.ndarray]:
    """Compute ``(environment.json dict, {camera: calibration dict}, floor-plan BGR image)``."""
    tsai = TsaiCamera.from_xml(tsai_xml)
    cameras = default_cameras(tsai)
    zones = tuple(Zone(name, np.asarray(poly, float)) for name, poly in ZONES_M.items())
    floor_plan = _floor_plan_for(cameras, zones)

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
        "floor_plan": floor_plan.to_json(),
        "zones": [{"name": z.name, "polygon_m": _round(z.polygon_m, 3)} for z in zones],
    }
    return environment, calibrations, draw_floor_plan(floor_plan, cameras, zones)


SOURCE_VIEW_CALIBRATION = REPO_ROOT / "data" / "calibration" / "pets_s2l1_view_001.json"


def source_view_calibration(tsai_xml: Path = TSAI_XML) -> dict:
    """A calibration file for the real source view itself (what ``spoton track --calibration``
    reads): image/map point pairs as for the virtual cameras, plus ``region_m``, the ground it
    tracks (below :data:`GROUND_MIN_SOURCE_ROW`)."""
    tsai = TsaiCamera.from_xml(tsai_xml)
    view = CameraConfig("view_001", SOURCE_SIZE, np.eye(3))
    image_points, map_points = calibration_points(view, tsai)
    homography = Homography.from_point_pairs(image_points, map_points)
    rms, worst = ground_check_error_m(view, homography, tsai)
    return {"camera": view.name, "units": "m", "image_size": list(SOURCE_SIZE),
            "image_points": image_points.tolist(), "map_points": map_points.tolist(),
            "reprojection_error_m": round(homography.reprojection_error_m, 4),
            "ground_check_rms_m": round(rms, 4), "ground_check_max_m": round(worst, 4),
            "region_m": _round(camera_footprint_m(view, tsai), 3),
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


def load_environment(config_dir: Path = DEFAULT_CONFIG_DIR) -> EnvironmentConfig:
    """Read ``environment.json`` from a config folder (or an environment folder in the store)."""
    config_dir = Path(config_dir)
    path = config_dir / "environment.json"
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise EnvironmentConfigError(
            f"{path} does not exist: point at a folder holding environment.json (the sample one is "
            f"{DEFAULT_CONFIG_DIR}; regenerate it with spoton.sample_env.write_environment_config)"
        ) from None
    except json.JSONDecodeError as exc:
        raise EnvironmentConfigError(f"{path} is not valid JSON: {exc}") from None
    try:
        cameras = tuple(CameraConfig.from_json(c) for c in spec["cameras"])
        segments = spec.get("segments", SEGMENTS)
        if isinstance(segments, dict):
            segments = segments["count"]
        zones = tuple(Zone(z["name"], np.asarray(z["polygon_m"], np.float64))
                      for z in spec.get("zones", []))
        return EnvironmentConfig(
            name=spec["name"],
            fps=float(spec["fps"]),
            cameras=cameras,
            segments=int(segments),
            floor_plan=FloorPlan.from_json(spec["floor_plan"], config_dir),
            zones=zones,
            source=dict(spec.get("source", {})),
            config_dir=config_dir,
        )
    except KeyError as missing:
        raise EnvironmentConfigError(f"{path} lacks the key {missing}") from None


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
    """Write every camera's sub-videos and calibration into an object-store folder.

    Layout: ``{store_root}/{env}/{camera}/sub_video_NN.mp4`` (H.264, native fps), plus
    ``{store_root}/{env}/calibration/{camera}.json``, ``environment.json`` and
    ``floor_plan.png`` copied from ``config_dir`` (so ``load_environment({store_root}/{env})``
    works). The source is decoded once; each frame is warped for every camera whose output
    is missing. Outputs that exist and probe as H.264 with the expected
    frame count are kept unless ``force``. ``max_source_frames`` builds from a prefix of the
    source (the sub-videos then split that prefix). Returns the video paths (written or kept).
    """
    source_video, config_dir = Path(source_video), Path(config_dir)
    config = load_environment(config_dir)
    info = probe(source_video)
    if (int(info.width), int(info.height)) != tuple(config.source.get("size", SOURCE_SIZE)):
        raise EnvironmentConfigError(
            f"{source_video} is {info.width}x{info.height} but environment {config.name!r} warps "
            f"a {config.source.get('size')} source: give the PETS 2009 S2.L1 view 1 video (vtest.avi)")
    n = int(info.frame_count)
    if max_source_frames is not None:
        n = min(n, int(max_source_frames))
    plan = config.segment_plan(n)

    env_dir = Path(store_root) / env
    copies = [Path("environment.json")]
    copies += [Path("calibration") / f"{c.name}.json" for c in config.cameras]
    if config.floor_plan.image_path is not None and config.floor_plan.image_path.is_file():
        copies.append(config.floor_plan.image_path.relative_to(config_dir))
    for relative in copies:
        src, dst = config_dir / relative, env_dir / relative
        if force or not dst.is_file() or dst.read_bytes() != src.read_bytes():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.part")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)

    outputs: list[Path] = []
    todo: list[tuple[CameraConfig, SegmentSpan, Path]] = []
    for camera in config.cameras:
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
                    writer = open_writers[path] = H264Writer(path, config.fps, size=camera.size)
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
