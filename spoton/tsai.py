"""Tsai camera model (as used by the PETS 2009 calibration files): world mm <-> image pixels.

The world frame is in millimetres with the ground on the plane Z = 0. The model
(see the PETS calibration notes):

- camera coordinates ``Pc = R @ Pw + T``;
- undistorted sensor coordinates ``Xu = focal * Xc / Zc``, ``Yu = focal * Yc / Zc``;
- radial distortion ``Xu = Xd * (1 + kappa1 * r^2)``, ``Yu = Yd * (1 + kappa1 * r^2)`` with
  ``r^2 = Xd^2 + Yd^2`` (distorted sensor coordinates, mm);
- pixels ``x = Xd * sx / dpx + cx``, ``y = Yd / dpy + cy``.

Going from the image to the world is closed-form (pixels -> distorted -> undistorted);
going from the world to the image needs the distorted radius ``rd`` from the undistorted
one ``ru``, a root of ``kappa1 * rd^3 + rd - ru = 0``, found here by Newton's method.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spoton.errors import SpotOnError


class TsaiCalibrationError(SpotOnError):
    """A Tsai calibration file that cannot be read."""


def _rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    sa, ca = math.sin(rx), math.cos(rx)
    sb, cb = math.sin(ry), math.cos(ry)
    sg, cg = math.sin(rz), math.cos(rz)
    return np.array([
        [cb * cg, cg * sa * sb - ca * sg, sa * sg + ca * cg * sb],
        [cb * sg, sa * sb * sg + ca * cg, ca * sb * sg - cg * sa],
        [-sb, cb * sa, ca * cb],
    ])


@dataclass(frozen=True)
class TsaiCamera:
    """One calibrated camera (Tsai model); lengths in millimetres, angles in radians."""

    width: int
    height: int
    ncx: float
    nfx: float
    dx: float
    dy: float
    dpx: float
    dpy: float
    focal: float
    kappa1: float
    cx: float
    cy: float
    sx: float
    tx: float
    ty: float
    tz: float
    rx: float
    ry: float
    rz: float
    name: str = ""

    @classmethod
    def from_xml(cls, path: Path | str) -> "TsaiCamera":
        """Parse a PETS-style ``<Camera><Geometry/><Intrinsic/><Extrinsic/></Camera>`` file."""
        path = Path(path)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as exc:
            raise TsaiCalibrationError(
                f"cannot read the Tsai calibration {path}: {exc}; give a PETS 2009 style XML "
                "file with Geometry, Intrinsic and Extrinsic elements") from None
        fields: dict[str, float] = {}
        for tag, names in (
            ("Geometry", ("width", "height", "ncx", "nfx", "dx", "dy", "dpx", "dpy")),
            ("Intrinsic", ("focal", "kappa1", "cx", "cy", "sx")),
            ("Extrinsic", ("tx", "ty", "tz", "rx", "ry", "rz")),
        ):
            element = root.find(tag)
            if element is None:
                raise TsaiCalibrationError(
                    f"{path} has no <{tag}> element: a Tsai calibration file needs Geometry, "
                    "Intrinsic and Extrinsic")
            for name in names:
                value = element.get(name)
                if value is None:
                    raise TsaiCalibrationError(f"{path}: <{tag}> lacks the attribute {name!r}")
                fields[name] = float(value)
        fields["width"] = int(fields["width"])
        fields["height"] = int(fields["height"])
        return cls(**fields, name=root.get("name", ""))

    # ---- derived quantities -------------------------------------------------------------
    @property
    def rotation(self) -> np.ndarray:
        """R in ``camera = R @ world + T``."""
        return _rotation(self.rx, self.ry, self.rz)

    @property
    def translation(self) -> np.ndarray:
        return np.array([self.tx, self.ty, self.tz])

    @property
    def centre_mm(self) -> np.ndarray:
        """Camera centre in world millimetres."""
        return -self.rotation.T @ self.translation

    # ---- sensor <-> pixel ---------------------------------------------------------------
    def _distorted_to_pixels(self, xd: np.ndarray, yd: np.ndarray) -> np.ndarray:
        return np.column_stack([xd * self.sx / self.dpx + self.cx, yd / self.dpy + self.cy])

    def _pixels_to_distorted(self, px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (px[:, 0] - self.cx) * self.dpx / self.sx, (px[:, 1] - self.cy) * self.dpy

    def _distort_radius(self, ru: np.ndarray) -> np.ndarray:
        """Solve ``kappa1 * rd^3 + rd = ru`` for rd (Newton, from rd = ru)."""
        k = self.kappa1
        if k == 0.0:
            return ru.copy()
        rd = ru.copy()
        for _ in range(50):
            step = (k * rd**3 + rd - ru) / (3 * k * rd**2 + 1)
            rd = rd - step
            if np.all(np.abs(step) < 1e-13):
                break
        return rd

    # ---- public mappings ----------------------------------------------------------------
    def world_to_image(self, points_mm: np.ndarray) -> np.ndarray:
        """World points (N, 3) mm, or (N, 2) on the ground (Z = 0), -> (N, 2) pixels.

        Points behind the camera come out as NaN.
        """
        points = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
        if points.shape[1] == 2:
            points = np.column_stack([points, np.zeros(len(points))])
        if points.shape[1] != 3:
            raise ValueError(f"world points must be (N, 2) or (N, 3), got shape {points.shape}")
        cam = points @ self.rotation.T + self.translation
        with np.errstate(divide="ignore", invalid="ignore"):
            xu = self.focal * cam[:, 0] / cam[:, 2]
            yu = self.focal * cam[:, 1] / cam[:, 2]
            ru = np.hypot(xu, yu)
            rd = self._distort_radius(ru)
            scale = np.where(ru > 0, rd / np.where(ru > 0, ru, 1.0), 1.0)
        out = self._distorted_to_pixels(xu * scale, yu * scale)
        out[cam[:, 2] <= 0] = np.nan
        return out

    def image_to_ground(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> world (N, 2) mm on the ground plane Z = 0.

        Pixels whose ray does not meet the ground in front of the camera (at or above
        the horizon) come out as NaN.
        """
        px = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        xd, yd = self._pixels_to_distorted(px)
        factor = 1.0 + self.kappa1 * (xd**2 + yd**2)
        ray_cam = np.column_stack([xd * factor, yd * factor, np.full(len(px), self.focal)])
        ray_world = ray_cam @ self.rotation  # R^T @ ray for each row
        centre = self.centre_mm
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -centre[2] / ray_world[:, 2]
        ground = centre[:2] + t[:, None] * ray_world[:, :2]
        ground[~(t > 0)] = np.nan
        return ground

    def horizon_row(self, x: float) -> float:
        """Approximate image row of the horizon at column x (rows below it see the ground)."""
        lo, hi = -5.0 * self.height, float(self.height)
        if np.isnan(self.image_to_ground(np.array([[x, hi]]))).any():
            return float("nan")
        for _ in range(60):
            mid = (lo + hi) / 2
            if np.isnan(self.image_to_ground(np.array([[x, mid]]))).any():
                lo = mid
            else:
                hi = mid
        return hi
