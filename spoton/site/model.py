"""Frozen, validated records of one site: what any camera network needs, no sample specifics.

World axes: metres on the ground plane. A floor-plan pixel ``(x, y)`` is
``x = (X - origin_m[0]) / metres_per_pixel`` and ``y = (origin_m[1] - Y) / metres_per_pixel`` when
``y_axis`` is ``"up"`` (+Y toward the top of the image), ``y = (Y - origin_m[1]) / metres_per_pixel``
when it is ``"down"``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from spoton.errors import SpotOnError
from spoton.geometry import CalibrationError, Homography, Zone, apply_homography
from spoton.perception.processor import CameraSpec

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# folders an environment keeps beside its camera folders: no camera may take these names
RESERVED_NAMES = frozenset({"environment", "calibration", "ground_truth"})
SOURCE_KINDS = ("file", "store", "upload", "rtsp", "http")
Y_AXES = ("up", "down")


class EnvironmentConfigError(SpotOnError):
    """An environment description that cannot be read, validated or stored."""


def check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise EnvironmentConfigError(
            f"{what} name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return name


def _points(what: str, value, min_rows: int) -> np.ndarray:
    """(N >= min_rows, 2) finite float array, read-only."""
    array = np.array(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < min_rows or not np.isfinite(array).all():
        raise EnvironmentConfigError(f"{what}: give at least {min_rows} finite [x, y] points, "
                                     f"got shape {array.shape}")
    array.setflags(write=False)
    return array


def _size(what: str, value) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in value)
    except (TypeError, ValueError):
        raise EnvironmentConfigError(f"{what}: give [width, height] in pixels, got {value!r}") from None
    if width <= 0 or height <= 0:
        raise EnvironmentConfigError(f"{what}: width and height must be positive, got {width}x{height}")
    return width, height


@dataclass(frozen=True, eq=False)
class Calibration:
    """Image pixels <-> floor metres of one camera: the point pairs, the homography fitted to them
    and its RMS reprojection error (metres, over the RANSAC inliers). An optional
    ``vertical_vanishing_point`` (pixels, where the images of vertical lines meet) places foot
    points on people's axes (:func:`spoton.geometry.foot_points`)."""

    image_points: np.ndarray  # (N, 2) pixels
    map_points: np.ndarray  # (N, 2) metres
    image_to_map: np.ndarray  # (3, 3)
    reprojection_error_m: float
    inliers: np.ndarray  # (N,) bool: the pairs the fit used
    vertical_vanishing_point: np.ndarray | None = None  # (2,) pixels

    def __post_init__(self) -> None:
        image = _points("calibration image_points", self.image_points, 4)
        world = _points("calibration map_points", self.map_points, 4)
        if len(image) != len(world):
            raise EnvironmentConfigError(f"calibration has {len(image)} image points but {len(world)} map points: "
                                         "give one map point (metres) per image point (pixels)")
        matrix = np.array(self.image_to_map, dtype=np.float64)
        if matrix.shape != (3, 3) or not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) < 1e-15:
            raise EnvironmentConfigError("calibration image_to_map must be an invertible 3x3 matrix of finite "
                                         "numbers: refit it from the point pairs (Calibration.from_point_pairs)")
        inliers = np.array(self.inliers, dtype=bool).reshape(-1)
        if len(inliers) != len(image):
            raise EnvironmentConfigError(f"calibration inliers: {len(inliers)} flags for {len(image)} point pairs")
        if not np.isfinite(self.reprojection_error_m) or self.reprojection_error_m < 0:
            raise EnvironmentConfigError(f"calibration reprojection_error_m must be a finite number >= 0, "
                                         f"got {self.reprojection_error_m!r}")
        for name, value in (("image_points", image), ("map_points", world), ("image_to_map", matrix),
                            ("inliers", inliers)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "reprojection_error_m", float(self.reprojection_error_m))
        if self.vertical_vanishing_point is not None:
            point = np.array(self.vertical_vanishing_point, dtype=np.float64)
            if point.shape != (2,) or not np.isfinite(point).all():
                raise EnvironmentConfigError(
                    f"calibration vertical_vanishing_point: give [x, y] in pixels (finite numbers), got "
                    f"{self.vertical_vanishing_point!r}, or leave it out (foot points at the boxes' bottom-centre)")
            point.setflags(write=False)
            object.__setattr__(self, "vertical_vanishing_point", point)

    @classmethod
    def from_point_pairs(cls, image_points, map_points, vertical_vanishing_point=None) -> "Calibration":
        """Fit the homography (RANSAC beyond 4 pairs) to image/map point pairs."""
        try:
            fitted = Homography.from_point_pairs(image_points, map_points)
        except CalibrationError as exc:
            raise EnvironmentConfigError(f"calibration: {exc}") from None
        return cls(image_points, map_points, fitted.image_to_map, fitted.reprojection_error_m, fitted.inliers,
                   vertical_vanishing_point)

    @property
    def homography(self) -> Homography:
        return Homography(self.image_to_map, self.reprojection_error_m, self.inliers)


@dataclass(frozen=True)
class CameraSource:
    """Where a camera's frames come from (``spoton.live.sources``): a kind and its URI or key.

    The URI is left out of the repr: a stream URL may carry a camera's password.
    """

    kind: str
    uri: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise EnvironmentConfigError(f"camera source kind {self.kind!r}: use one of {', '.join(SOURCE_KINDS)}")
        if not isinstance(self.uri, str) or not self.uri:
            raise EnvironmentConfigError("camera source uri: give the file, store key or stream URL")


@dataclass(frozen=True, eq=False)
class Camera:
    """One camera: its source, frame rate and size, calibration and the floor it tracks people on.

    Camera frame ``i`` is environment frame ``i + start_offset_frames`` (a late-starting camera);
    camera time ``t`` is environment time ``t + time_offset_s``. ``tracked_region_m`` is the floor
    polygon (metres) the camera tracks people in (None: everywhere it sees).
    """

    name: str
    fps: float
    resolution: tuple[int, int]  # (w, h)
    calibration: Calibration | None = None
    tracked_region_m: np.ndarray | None = None
    source: CameraSource | None = None
    start_offset_frames: int = 0
    time_offset_s: float = 0.0
    enabled: bool = True  # a disabled camera stays described but is neither materialized nor streamed

    def __post_init__(self) -> None:
        check_name("camera", self.name)
        if self.name in RESERVED_NAMES:
            raise EnvironmentConfigError(f"camera name {self.name!r} is reserved for the environment's own "
                                         f"folders ({', '.join(sorted(RESERVED_NAMES))}): rename the camera")
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise EnvironmentConfigError(f"camera {self.name!r}: fps must be > 0, got {self.fps!r}")
        object.__setattr__(self, "fps", float(self.fps))
        object.__setattr__(self, "resolution", _size(f"camera {self.name!r} resolution", self.resolution))
        if self.tracked_region_m is not None:
            object.__setattr__(self, "tracked_region_m",
                               _points(f"camera {self.name!r} tracked_region_m", self.tracked_region_m, 3))
        if int(self.start_offset_frames) != self.start_offset_frames or self.start_offset_frames < 0:
            raise EnvironmentConfigError(f"camera {self.name!r}: start_offset_frames must be an integer >= 0, "
                                         f"got {self.start_offset_frames!r}")
        object.__setattr__(self, "start_offset_frames", int(self.start_offset_frames))
        object.__setattr__(self, "time_offset_s", float(self.time_offset_s))
        if not isinstance(self.enabled, bool):
            raise EnvironmentConfigError(f"camera {self.name!r}: enabled must be true or false, got {self.enabled!r}")

    def spec(self) -> CameraSpec:
        """What the FrameProcessor needs: the calibration and the tracked region."""
        if self.calibration is None:
            return CameraSpec(self.name, region_m=self.tracked_region_m)
        return CameraSpec(self.name, self.calibration.homography, self.tracked_region_m,
                          self.calibration.vertical_vanishing_point)


@dataclass(frozen=True, eq=False)
class FloorPlan:
    """The floor-plan image (a key under the environment's folder) and its pixels <-> metres frame."""

    image_key: str | None
    size_px: tuple[int, int]  # (w, h)
    metres_per_pixel: float
    origin_m: tuple[float, float]  # the world point at the image's top-left corner
    y_axis: str = "up"
    map_to_pixel: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size_px", _size("floor plan size_px", self.size_px))
        if not np.isfinite(self.metres_per_pixel) or self.metres_per_pixel <= 0:
            raise EnvironmentConfigError(f"floor plan metres_per_pixel must be > 0, got {self.metres_per_pixel!r}")
        origin = tuple(float(v) for v in self.origin_m)
        if len(origin) != 2 or not np.isfinite(origin).all():
            raise EnvironmentConfigError(f"floor plan origin_m: give the [X, Y] metres of the image's top-left "
                                         f"corner, got {self.origin_m!r}")
        if self.y_axis not in Y_AXES:
            raise EnvironmentConfigError(f"floor plan y_axis {self.y_axis!r}: 'up' (+Y toward the image top) "
                                         "or 'down' (+Y toward the image bottom)")
        if self.image_key is not None and (not self.image_key or self.image_key.startswith("/") or ".." in self.image_key):
            raise EnvironmentConfigError(f"floor plan image_key {self.image_key!r}: give a key relative to the "
                                         "environment's folder, e.g. 'floor_plan.png'")
        object.__setattr__(self, "origin_m", origin)
        ppm, sign = self.pixels_per_metre, (-1.0 if self.y_axis == "up" else 1.0)
        matrix = np.array([[ppm, 0.0, -origin[0] * ppm], [0.0, sign * ppm, -sign * origin[1] * ppm], [0.0, 0.0, 1.0]])
        matrix.setflags(write=False)
        object.__setattr__(self, "map_to_pixel", matrix)

    @property
    def pixels_per_metre(self) -> float:
        return 1.0 / self.metres_per_pixel

    @property
    def bounds_m(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in metres."""
        (w, h), ppm = self.size_px, self.pixels_per_metre
        x0, y0 = self.origin_m
        if self.y_axis == "up":
            return x0, y0 - h / ppm, x0 + w / ppm, y0
        return x0, y0, x0 + w / ppm, y0 + h / ppm

    def to_pixels(self, points_m: np.ndarray) -> np.ndarray:
        return apply_homography(self.map_to_pixel, points_m)

    def to_metres(self, pixels: np.ndarray) -> np.ndarray:
        return apply_homography(np.linalg.inv(self.map_to_pixel), pixels)


@dataclass(frozen=True, eq=False)
class Environment:
    """A site: its cameras on one clock (``fps``), its floor plan and named zones.

    A site being set up may have no camera yet (it cannot be run until it has one).
    ``segment_length_s`` is how long the sub-videos of a camera added from a video are (None: the
    sub-videos are cut elsewhere, as the sample's are).
    """

    name: str
    fps: float
    cameras: tuple[Camera, ...]
    floor_plan: FloorPlan
    zones: tuple[Zone, ...] = ()
    description: str = ""
    segment_length_s: float | None = None

    def __post_init__(self) -> None:
        check_name("environment", self.name)
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise EnvironmentConfigError(f"environment {self.name!r}: fps must be > 0, got {self.fps!r}")
        object.__setattr__(self, "fps", float(self.fps))
        cameras, zones = tuple(self.cameras), tuple(self.zones)
        if self.segment_length_s is not None and not (np.isfinite(self.segment_length_s) and self.segment_length_s > 0):
            raise EnvironmentConfigError(f"environment {self.name!r}: segment_length_s must be > 0 seconds, "
                                         f"got {self.segment_length_s!r}")
        for what, names in (("camera", [c.name for c in cameras]), ("zone", [z.name for z in zones])):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise EnvironmentConfigError(f"environment {self.name!r}: {what} names {repeated} appear twice; "
                                             f"give each {what} its own name")
        object.__setattr__(self, "cameras", cameras)
        object.__setattr__(self, "zones", zones)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def camera(self, name: str) -> Camera:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise EnvironmentConfigError(f"environment {self.name!r} has no camera {name!r}; it has {list(self.camera_names)}")

    def camera_spec(self, name: str) -> CameraSpec:
        return self.camera(name).spec()
