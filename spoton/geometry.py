"""Image <-> floor-plan geometry: homographies from point pairs, foot points to metres."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spoton.errors import SpotOnError


class CalibrationError(SpotOnError):
    """Point pairs that cannot define a homography."""


def apply_homography(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a 3x3 homography; points at infinity become NaN."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ np.asarray(matrix, np.float64).T
    w = homogeneous[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = homogeneous[:, :2] / w
    out[np.abs(w[:, 0]) < 1e-12] = np.nan
    return out


def homography_scale(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) output units per input pixel at each of (N, 2) points: the root-sum-square of the
    homography's Jacobian there (how far a one-pixel slip in any direction moves the mapped point,
    up to a factor sqrt 2); NaN where a point maps to infinity."""
    matrix = np.asarray(matrix, np.float64)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ matrix.T
    w = homogeneous[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        # d(a / w) / du = (H00 w - a H20) / w^2, and so on for the other three partial derivatives
        jacobian = (matrix[None, :2, :2] * w[:, None, None]
                    - homogeneous[:, :2, None] * matrix[None, 2:3, :2]) / (w * w)[:, None, None]
    scale = np.sqrt(np.sum(jacobian * jacobian, axis=(1, 2)))
    scale[np.abs(w) < 1e-12] = np.nan
    return scale


@dataclass(frozen=True)
class Homography:
    """A camera's image-plane to ground-plane mapping (pixels -> metres).

    ``reprojection_error_m`` is the RMS distance, in metres, between the map
    points given and the image points mapped through the fitted matrix (over
    RANSAC inliers); ``inliers`` marks which pairs were used.
    """

    image_to_map: np.ndarray
    reprojection_error_m: float
    inliers: np.ndarray

    @classmethod
    def from_point_pairs(cls, image_points, map_points, ransac_threshold_m: float = 0.5) -> "Homography":
        image_points = np.asarray(image_points, dtype=np.float64).reshape(-1, 2)
        map_points = np.asarray(map_points, dtype=np.float64).reshape(-1, 2)
        if len(image_points) != len(map_points):
            raise CalibrationError(
                f"{len(image_points)} image points but {len(map_points)} map points: give one map "
                "point (metres) per image point (pixels)")
        if len(image_points) < 4:
            raise CalibrationError(
                f"a homography needs at least 4 point pairs, got {len(image_points)}: add "
                "more image/map correspondences, spread over the floor")
        method = cv2.RANSAC if len(image_points) > 4 else 0
        matrix, mask = cv2.findHomography(image_points, map_points, method, ransac_threshold_m)
        if matrix is None:
            raise CalibrationError(
                "the point pairs are degenerate (collinear or repeated): choose points that "
                "span the floor, no three on one line")
        inliers = mask.ravel().astype(bool) if mask is not None else np.ones(len(image_points), bool)
        residual = apply_homography(matrix, image_points[inliers]) - map_points[inliers]
        error = float(np.sqrt(np.mean(np.sum(residual**2, axis=1))))
        return cls(matrix, error, inliers)

    @classmethod
    def from_json(cls, path: Path) -> "Homography":
        """Load a calibration file: ``{"image_points": [[x, y], ...], "map_points": [[X, Y], ...]}``."""
        spec = json.loads(Path(path).read_text())
        try:
            return cls.from_point_pairs(spec["image_points"], spec["map_points"])
        except KeyError as missing:
            raise CalibrationError(
                f"{path} lacks {missing}: a calibration file lists image_points (pixels) and "
                "map_points (metres) as pairs") from None

    @property
    def map_to_image(self) -> np.ndarray:
        return np.linalg.inv(self.image_to_map)

    def to_map(self, image_points: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> ground-plane metres (N, 2)."""
        return apply_homography(self.image_to_map, image_points)

    def to_image(self, map_points: np.ndarray) -> np.ndarray:
        """Ground-plane metres (N, 2) -> pixels (N, 2)."""
        return apply_homography(self.map_to_image, map_points)


def foot_points(xyxy: np.ndarray, vertical_vanishing_point: np.ndarray | None = None) -> np.ndarray:
    """Where the people in (N, 4) boxes touch the ground, on the boxes' bottom edge.

    Without ``vertical_vanishing_point`` (pixels: where the images of vertical lines meet), the
    bottom-centre. With it, where the person's axis (the line from the vanishing point through the
    box centre) meets the bottom edge: a person the view shows leaning fills an upright box whose
    bottom-centre is off the feet by about half the lean (a tilted or rolled camera, a view edge).
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    centre_x, bottom = (xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]
    if vertical_vanishing_point is None:
        return np.column_stack([centre_x, bottom])
    vx, vy = np.asarray(vertical_vanishing_point, dtype=np.float64).reshape(2)
    centre_y = (xyxy[:, 1] + bottom) / 2
    rise = vy - centre_y
    safe = np.abs(rise) > 1e-6  # a vanishing point level with the box centre gives no axis: keep the centre
    slope = np.divide(vx - centre_x, rise, out=np.zeros(len(xyxy)), where=safe)
    return np.column_stack([centre_x + (bottom - centre_y) * slope, bottom])


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: which points lie inside the polygon (K, 2) (even-odd rule)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    polygon = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = points[:, 0:1], points[:, 1:2]
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside = np.sum(crosses & (x < x_at), axis=1) % 2 == 1
    return inside


@dataclass(frozen=True, eq=False)
class Zone:
    """A named floor area: a simple polygon of (K >= 3, 2) vertices in map metres."""

    name: str
    polygon_m: np.ndarray

    def __post_init__(self) -> None:
        polygon = np.asarray(self.polygon_m, dtype=np.float64)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
            raise ValueError(f"zone {self.name!r}: polygon must be (K >= 3, 2) points in metres, "
                             f"got shape {polygon.shape}")
        polygon.setflags(write=False)
        object.__setattr__(self, "polygon_m", polygon)

    @classmethod
    def from_dict(cls, spec: dict) -> "Zone":
        """From ``{"name": "entrance", "polygon_m": [[x, y], ...]}`` (``polygon`` also accepted)."""
        polygon = spec.get("polygon_m", spec.get("polygon"))
        if polygon is None:
            raise ValueError(f"zone {spec.get('name')!r} has no polygon_m: list its corners in metres")
        return cls(str(spec["name"]), np.asarray(polygon, dtype=np.float64))

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        """(N, 2) metres -> (N,) bool, even-odd rule."""
        return points_in_polygon(points_m, self.polygon_m)

    @property
    def area_m2(self) -> float:
        x, y = self.polygon_m[:, 0], self.polygon_m[:, 1]
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)
