"""The first stored form of an environment, read into the general model.

That form is ``{env}/environment.json`` (cameras with the sample's warp, a floor plan with
``pixels_per_metre``, zones) beside ``{env}/calibration/{camera}.json`` (image/map point pairs).
Stores built before versioned environments, and the sample's committed config
(``data/environments/pets_s2l1``), hold it. The warp belongs to the sample and is not read here.
"""
from __future__ import annotations

import json

import numpy as np

from spoton.geometry import Zone
from spoton.site.model import Calibration, Camera, Environment, EnvironmentConfigError, FloorPlan
from spoton.storage.store import ObjectStore

FLOOR_PLAN_AXES = ("pixel x = (X - origin_m[0]) * pixels_per_metre, pixel y = (origin_m[1] - Y) * pixels_per_metre: "
                   "+X to the right, +Y up; origin_m is the world point at the top-left image corner")


def config_key(environment: str) -> str:
    return f"{environment}/environment.json"


def calibration_key(environment: str, camera: str) -> str:
    return f"{environment}/calibration/{camera}.json"


def floor_plan_to_json(plan: FloorPlan) -> dict:
    """A floor plan in the first form (what the sample's committed config holds)."""
    out = {"origin_m": list(plan.origin_m), "pixels_per_metre": plan.pixels_per_metre, "size_px": list(plan.size_px),
           "axes": FLOOR_PLAN_AXES, "map_to_pixel": np.round(plan.map_to_pixel, 10).tolist()}
    if plan.image_key is not None:
        out["image"] = plan.image_key
    return out


def floor_plan_from_json(spec: dict) -> FloorPlan:
    return FloorPlan(spec.get("image"), tuple(spec["size_px"]), 1.0 / float(spec["pixels_per_metre"]),
                     tuple(spec["origin_m"]), "up")


def _read_json(store: ObjectStore, key: str) -> dict:
    try:
        return json.loads(store.read_bytes(key))
    except json.JSONDecodeError as exc:
        raise EnvironmentConfigError(f"{store.uri}/{key} is not valid JSON: {exc}") from None


def read_environment(store: ObjectStore, environment: str) -> Environment:
    """``{env}/environment.json`` and its calibration files as an :class:`Environment`.

    A camera without a calibration file gets none (no map positions), as before.
    """
    key = config_key(environment)
    spec = _read_json(store, key)
    try:
        fps = float(spec["fps"])
        cameras = []
        for camera in spec["cameras"]:
            calibration_file = calibration_key(environment, camera["name"])
            calibration = None
            if store.exists(calibration_file):
                pairs = _read_json(store, calibration_file)
                calibration = Calibration.from_point_pairs(pairs["image_points"], pairs["map_points"],
                                                           pairs.get("vertical_vanishing_point"))
            cameras.append(Camera(str(camera["name"]), fps, tuple(camera["size"]), calibration,
                                  camera.get("footprint_m"), None, camera.get("start_offset_frames", 0),
                                  camera.get("time_offset_s", 0.0)))
        zones = tuple(Zone(z["name"], np.asarray(z["polygon_m"], np.float64)) for z in spec.get("zones", []))
        return Environment(spec["name"], fps, tuple(cameras), floor_plan_from_json(spec["floor_plan"]), zones,
                           spec.get("description", ""))
    except KeyError as missing:
        raise EnvironmentConfigError(f"{store.uri}/{key} (or a calibration file beside it) lacks the key {missing}") from None
    except ValueError as exc:
        raise EnvironmentConfigError(f"{store.uri}/{key}: {exc}") from None
