"""The sample's virtual cameras: perspective warps of one real calibrated video.

The sample video (``vtest.avi``) is view 1 of PETS 2009 S2.L1, with its real Tsai
calibration. To exercise multi-camera code on real footage, each virtual camera is a
perspective warp (3x3, source pixels -> camera pixels) of an overlapping quadrilateral
of the source frame onto a 640x480 image, so a person in an overlap is seen by two or
three cameras at once, at different positions, scales and orientations. One camera
starts a few frames later than the others (a real-world clock offset).

Each camera's calibration (camera pixels <-> ground metres) is the camera's inverse
warp composed with the real ground-plane mapping of the Tsai model, stored as
image-point / map-point pairs. The Tsai model has radial lens distortion, so a homography
fitted to these pairs is not exact: each calibration file records its reprojection error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from spoton.geometry import Homography, apply_homography
from spoton.site.model import EnvironmentConfigError
from spoton.tsai import TsaiCamera

SOURCE_SIZE = (768, 576)  # (w, h) of vtest.avi
SOURCE_FPS = 7.0
SOURCE_FRAME_COUNT = 795
CAMERA_SIZE = (640, 480)

# Source rows above this see buildings or ground more than ~20 m away: calibration points
# and camera footprints use the ground below it only.
GROUND_MIN_SOURCE_ROW = 140.0

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


@dataclass(frozen=True, eq=False)
class VirtualCamera:
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
            "warp": rounded(self.warp, 10),
            "start_offset_frames": self.start_offset_frames,
            "time_offset_s": self.time_offset_s,
        }
        if self.footprint_m is not None:
            out["footprint_m"] = rounded(self.footprint_m, 3)
        return out

    @classmethod
    def from_json(cls, spec: dict) -> "VirtualCamera":
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


def rounded(array: np.ndarray, decimals: int) -> list:
    """The array as nested lists of numbers rounded to ``decimals`` (what the committed JSON holds)."""
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()


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


def visible_ground_source_polygon(camera: VirtualCamera) -> np.ndarray:
    """Source-pixel polygon of the ground a camera sees (its quad, clipped to the source frame
    and to rows below :data:`GROUND_MIN_SOURCE_ROW`)."""
    w, h = camera.size
    corners = camera.camera_to_source(np.array([[0, 0], [w, 0], [w, h], [0, h]], float))
    sw, sh = SOURCE_SIZE
    return _clip_polygon(corners, 0.0, GROUND_MIN_SOURCE_ROW, float(sw), float(sh))


def camera_footprint_m(camera: VirtualCamera, tsai: TsaiCamera) -> np.ndarray:
    """Polygon (K, 2), metres, of the ground a camera sees (edges follow the lens distortion)."""
    polygon = _densify(visible_ground_source_polygon(camera), step_px=32.0)
    return tsai.image_to_ground(polygon) / 1000.0


def _on_visible_ground(camera: VirtualCamera, camera_px: np.ndarray) -> np.ndarray:
    source = camera.camera_to_source(camera_px)
    sw, sh = SOURCE_SIZE
    return ((source[:, 0] >= 0) & (source[:, 0] <= sw - 1) & (source[:, 1] >= GROUND_MIN_SOURCE_ROW)
            & (source[:, 1] <= sh - 1))


def calibration_points(camera: VirtualCamera, tsai: TsaiCamera, min_points: int = 12,
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


def vertical_vanishing_point(camera: VirtualCamera, tsai: TsaiCamera, image_points: np.ndarray,
                             height_m: float = 1.7) -> np.ndarray:
    """Camera pixels (2,) where the images of vertical lines meet: the least-squares meeting point
    of the people's axes (ground point to ``height_m`` above it, through the Tsai model and the
    warp) standing on ``image_points`` (camera px on the ground)."""
    ground_mm = tsai.image_to_ground(camera.camera_to_source(image_points))
    up_mm = np.column_stack([ground_mm, np.full(len(ground_mm), 1000.0 * height_m)])
    head = camera.source_to_camera(tsai.world_to_image(up_mm))
    direction = head - image_points
    normal = np.column_stack([-direction[:, 1], direction[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    lines = np.column_stack([normal, -(normal * image_points).sum(axis=1)])  # homogeneous: n . p - c = 0
    point = np.linalg.svd(lines)[2][-1]
    return point[:2] / point[2]


def ground_check_error_m(camera: VirtualCamera, homography: Homography, tsai: TsaiCamera,
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


def default_cameras(tsai: TsaiCamera | None = None, fps: float = SOURCE_FPS) -> tuple[VirtualCamera, ...]:
    cameras = []
    for name, quad in CAMERA_QUADS.items():
        offset = CAMERA_START_OFFSETS.get(name, 0)
        camera = VirtualCamera(name, CAMERA_SIZE, quad_warp(quad), offset, round(offset / fps, 6))
        if tsai is not None:
            camera = VirtualCamera(camera.name, camera.size, camera.warp, camera.start_offset_frames,
                                  camera.time_offset_s, np.round(camera_footprint_m(camera, tsai), 3))
        cameras.append(camera)
    return tuple(cameras)
