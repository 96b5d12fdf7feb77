"""Versioned, atomic save and load of environments in the object store.

Layout under the environment's folder::

    {env}/environment/versions/{NNNNNN}.json   one validated document per saved version
    {env}/environment/current.json             the pointer: {"version": N}

A save writes the new version's key first and the pointer last, so a save that fails at any
point leaves the pointer, and so the loaded environment, at the previous version. Restoring
an old version saves its document again as a new version: history only grows. An environment
stored before versions existed (``{env}/environment.json`` plus ``calibration/{camera}.json``)
is read through :mod:`spoton.site.legacy`.
"""
from __future__ import annotations

import json
import re

import numpy as np

from spoton.geometry import Zone
from spoton.site import legacy
from spoton.site.model import Calibration, Camera, CameraSource, Environment, EnvironmentConfigError, FloorPlan
from spoton.site.schema import FORMAT_VERSION, validate_document
from spoton.storage.store import ObjectStore

VERSION_KEY = re.compile(r"/environment/versions/(\d{6})\.json$")


def versions_prefix(environment: str) -> str:
    return f"{environment}/environment/versions/"


def version_key(environment: str, version: int) -> str:
    return f"{versions_prefix(environment)}{version:06d}.json"


def pointer_key(environment: str) -> str:
    return f"{environment}/environment/current.json"


def _polygon(points: np.ndarray | None) -> list | None:
    return None if points is None else points.tolist()


def to_document(env: Environment) -> dict:
    """The stored form (JSON-ready; floats kept exactly, so a load gives back the same numbers)."""
    def calibration(c: Calibration | None) -> dict | None:
        if c is None:
            return None
        vanishing = c.vertical_vanishing_point
        return {"image_points": c.image_points.tolist(), "map_points": c.map_points.tolist(),
                "image_to_map": c.image_to_map.tolist(), "reprojection_error_m": c.reprojection_error_m,
                "inliers": c.inliers.tolist()
                } | ({} if vanishing is None else {"vertical_vanishing_point": vanishing.tolist()})

    plan = env.floor_plan
    optional = {} if env.segment_length_s is None else {"segment_length_s": env.segment_length_s}
    return {
        "format_version": FORMAT_VERSION, "name": env.name, "description": env.description, "fps": env.fps,
        "cameras": [{"name": c.name, "fps": c.fps, "resolution": list(c.resolution),
                     "source": None if c.source is None else {"kind": c.source.kind, "uri": c.source.uri},
                     "calibration": calibration(c.calibration), "tracked_region_m": _polygon(c.tracked_region_m),
                     "start_offset_frames": c.start_offset_frames, "time_offset_s": c.time_offset_s}
                    | ({} if c.enabled else {"enabled": False}) for c in env.cameras],
        "floor_plan": {"image_key": plan.image_key, "size_px": list(plan.size_px),
                       "metres_per_pixel": plan.metres_per_pixel, "origin_m": list(plan.origin_m),
                       "y_axis": plan.y_axis},
        "zones": [{"name": z.name, "polygon_m": z.polygon_m.tolist()} for z in env.zones],
    } | optional


def from_document(document: dict, where: str = "environment document") -> Environment:
    """Validate against the schema, then build the records (which check what a schema cannot)."""
    validate_document(document, where)
    try:
        cameras = tuple(
            Camera(c["name"], c["fps"], tuple(c["resolution"]),
                   calibration=None if c.get("calibration") is None else Calibration(**c["calibration"]),
                   tracked_region_m=c.get("tracked_region_m"),
                   source=None if c.get("source") is None else CameraSource(**c["source"]),
                   start_offset_frames=c.get("start_offset_frames", 0), time_offset_s=c.get("time_offset_s", 0.0),
                   enabled=c.get("enabled", True))
            for c in document["cameras"])
        zones = tuple(Zone(z["name"], np.asarray(z["polygon_m"], np.float64)) for z in document.get("zones", []))
        plan = document["floor_plan"]
        return Environment(document["name"], document["fps"], cameras,
                           FloorPlan(plan.get("image_key"), tuple(plan["size_px"]), plan["metres_per_pixel"],
                                     tuple(plan["origin_m"]), plan["y_axis"]),
                           zones, document.get("description", ""), document.get("segment_length_s"))
    except ValueError as exc:  # a zone whose polygon is not (K >= 3, 2) points
        raise EnvironmentConfigError(f"{where}: {exc}") from None


def list_versions(store: ObjectStore, environment: str) -> list[int]:
    """Saved versions of the environment, oldest first (empty when it has none)."""
    return sorted(int(m[1]) for key in store.list_keys(versions_prefix(environment))
                  if (m := VERSION_KEY.search(key)))


def current_version(store: ObjectStore, environment: str) -> int | None:
    key = pointer_key(environment)
    if not store.exists(key):
        return None
    return int(json.loads(store.read_bytes(key))["version"])


def save_environment(store: ObjectStore, env: Environment) -> int:
    """Store ``env`` as a new version of ``{env.name}`` and point at it; returns the version.

    Saving the document the pointer already names writes nothing and returns that version.
    """
    document = to_document(env)
    validate_document(document, f"environment {env.name!r}")
    current = current_version(store, env.name)
    if current is not None and _read_document(store, env.name, current) == document:
        return current
    version = max(list_versions(store, env.name), default=0) + 1
    store.write_bytes(version_key(env.name, version), (json.dumps(document, indent=1) + "\n").encode())
    store.write_bytes(pointer_key(env.name), (json.dumps({"version": version}) + "\n").encode())
    return version


def _read_document(store: ObjectStore, environment: str, version: int) -> dict:
    key = version_key(environment, version)
    if not store.exists(key):
        raise EnvironmentConfigError(f"{store.uri}/{key} is missing: environment {environment!r} has versions "
                                     f"{list_versions(store, environment)}")
    try:
        return json.loads(store.read_bytes(key))
    except json.JSONDecodeError as exc:
        raise EnvironmentConfigError(f"{store.uri}/{key} is not valid JSON: {exc}") from None


def load_environment(store: ObjectStore, environment: str, version: int | None = None) -> Environment:
    """The environment's current version (or ``version``); the first stored form when it has none."""
    version = version or current_version(store, environment)
    if version is None:
        if store.exists(legacy.config_key(environment)):
            return legacy.read_environment(store, environment)
        raise EnvironmentConfigError(
            f"{store.uri}/{pointer_key(environment)} is missing: environment {environment!r} was never saved "
            "(describe it with spoton.site.model and store it with spoton.site.storage.save_environment)")
    env = from_document(_read_document(store, environment, version),
                        f"{store.uri}/{version_key(environment, version)}")
    if env.name != environment:
        raise EnvironmentConfigError(f"{store.uri}/{version_key(environment, version)} describes {env.name!r}, "
                                     f"not {environment!r}: an environment lives in the folder of its name")
    return env


def restore_version(store: ObjectStore, environment: str, version: int) -> int:
    """Make an earlier version current again, as a new version; returns the new version."""
    return save_environment(store, load_environment(store, environment, version))


def environment_exists(store: ObjectStore, environment: str) -> bool:
    """Whether the store holds the environment (saved, or in the first stored form)."""
    return store.exists(pointer_key(environment)) or store.exists(legacy.config_key(environment))


def list_environments(store: ObjectStore) -> list[str]:
    """Names of the environments in the store (saved, or in the first stored form)."""
    names = set()
    for key in store.list_keys():
        parts = key.split("/")
        if parts[1:] == ["environment", "current.json"] or parts[1:] == ["environment.json"]:
            names.add(parts[0])
    return sorted(names)
