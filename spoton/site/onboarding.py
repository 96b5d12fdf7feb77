"""Bring your own site: the operations the CLI (``spoton env ...``) and the live API's site routes share.

Each operation loads the site's current version, builds the changed records (which validate
themselves) and saves them as a new version (:mod:`spoton.site.storage`: atomic, history only
grows), so bad input changes nothing. Errors are :class:`OnboardingError` with the HTTP status a
client should get (the CLI exits 2 on any of them) and a message that names the problem and the fix.

A camera added from a video is :mod:`spoton.site.ingest` (cut into sub-videos of the site's
``segment_length_s``, re-encoded to H.264 only when needed). A camera
added by URI keeps its source as given (a password included: sessions need it); what is shown back
is :func:`shown_source`, password replaced by ``***``.
"""
from __future__ import annotations

import base64
import csv
import io
import math
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from spoton.errors import VideoError
from spoton.geometry import Zone, apply_homography
from spoton.redact import hide_path, redact
from spoton.site.model import (
    Calibration, Camera, CameraSource, Environment, EnvironmentConfigError, FloorPlan, check_name,
)
from spoton.site.storage import (
    current_version, environment_exists, list_environments, list_versions, load_environment, pointer_key,
    restore_version, save_environment,
)
from spoton.storage.store import ObjectStore
from spoton.video import iter_frames, probe

CALIBRATION_COLUMNS = ("image_x", "image_y", "map_x", "map_y")
FLOOR_PLAN_TYPES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"))
MAX_FLOOR_PLAN_BYTES = 20 * 1024 * 1024
MAX_FLOOR_PLAN_SIDE_PX = 10000
DEFAULT_MAX_CALIBRATION_ERROR_M = 0.5
DEFAULT_SEGMENT_LENGTH_S = 60.0


class OnboardingError(EnvironmentConfigError):
    """Input a site operation refuses; ``status``: 404 unknown, 409 conflict, 415 not a video or
    image, 422 invalid (a camera that does not answer included: the client gave its URI)."""

    def __init__(self, detail: str, status: int = 422):
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True)
class CalibrationReport:
    """A fitted calibration and how well each point pair fits it (metres on the floor)."""

    calibration: Calibration
    point_errors_m: tuple[float, ...]
    rms_error_m: float
    max_error_m: float


@dataclass(frozen=True)
class Snapshot:
    """One frame of a camera's source: what "test connection" answers."""

    jpeg: bytes
    size: tuple[int, int]  # (w, h)
    fps: float | None


def shown_source(source: CameraSource | None) -> dict | None:
    return None if source is None else {"kind": source.kind, "uri": redact(source.uri)}


def load_site(store: ObjectStore, environment: str) -> Environment:
    check_name("environment", environment)
    if not environment_exists(store, environment):
        raise OnboardingError(f"no site {environment!r}: create it first (spoton env create {environment} "
                              "--floor-plan IMAGE --metres-per-pixel M), or list them with spoton env list", 404)
    return load_environment(store, environment)


def _camera(env: Environment, camera: str) -> Camera:
    if camera not in env.camera_names:
        raise OnboardingError(f"site {env.name!r} has no camera {camera!r}; it has {list(env.camera_names)}: "
                              f"add it first (spoton env add-camera {env.name} {camera} --video FILE)", 404)
    return env.camera(camera)


def _with_camera(env: Environment, camera: Camera) -> Environment:
    cameras = tuple(camera if c.name == camera.name else c for c in env.cameras)
    return replace(env, cameras=cameras)


def scale_from_points(x1: float, y1: float, x2: float, y2: float, distance_m: float) -> float:
    """Metres per pixel from two floor-plan pixels ``distance_m`` apart."""
    pixels = math.hypot(x2 - x1, y2 - y1)
    if not (math.isfinite(pixels) and pixels > 0):
        raise OnboardingError("the two scale points are the same pixel: click two points far apart on the plan")
    if not (math.isfinite(distance_m) and distance_m > 0):
        raise OnboardingError(f"the distance between the scale points must be > 0 metres, got {distance_m!r}")
    return distance_m / pixels


def check_floor_plan(image: bytes) -> tuple[str, tuple[int, int]]:
    """(file extension, (w, h)) of a PNG or JPEG floor plan; refuses anything else."""
    if len(image) > MAX_FLOOR_PLAN_BYTES:
        raise OnboardingError(f"the floor plan is {len(image)} bytes, over the {MAX_FLOOR_PLAN_BYTES} byte limit: "
                              "save it smaller (a plan needs no more than a few thousand pixels a side)", 413)
    extension = next((ext for magic, ext in FLOOR_PLAN_TYPES if image.startswith(magic)), None)
    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR) if extension else None
    if decoded is None:
        raise OnboardingError("the floor plan is not a PNG or JPEG image: export the plan as PNG or JPEG", 415)
    height, width = decoded.shape[:2]
    if max(width, height) > MAX_FLOOR_PLAN_SIDE_PX or min(width, height) < 16:
        raise OnboardingError(f"the floor plan is {width}x{height} pixels: give 16 to {MAX_FLOOR_PLAN_SIDE_PX} "
                              "pixels a side")
    return extension, (width, height)


def create_site(store: ObjectStore, name: str, floor_plan: bytes, metres_per_pixel: float,
                origin_m: tuple[float, float] = (0.0, 0.0), y_axis: str = "down", fps: float = 25.0,
                segment_length_s: float = DEFAULT_SEGMENT_LENGTH_S, description: str = "") -> int:
    """A new site with its floor plan and scale and no camera yet; returns its version (1).

    ``origin_m`` is the floor point (metres) at the plan's top-left corner; ``fps`` the site
    clock until its first camera sets it.
    """
    check_name("site", name)
    if environment_exists(store, name) or list_versions(store, name):
        raise OnboardingError(f"site {name!r} already exists (or was deleted and keeps its history): "
                              "pick another name", 409)
    extension, size = check_floor_plan(floor_plan)
    env = Environment(name, fps, (), FloorPlan(f"floor_plan.{extension}", size, metres_per_pixel, origin_m, y_axis),
                      description=description, segment_length_s=segment_length_s)
    store.write_bytes(f"{name}/{env.floor_plan.image_key}", floor_plan)
    return save_environment(store, env)


def list_sites(store: ObjectStore) -> list[Environment]:
    return [load_environment(store, name) for name in list_environments(store)]


def delete_site(store: ObjectStore, name: str) -> None:
    """Take the site out of the list; its versions, videos and tables stay (history stays queryable)."""
    load_site(store, name)
    store.delete(pointer_key(name))


def rename_site(store: ObjectStore, name: str, new_name: str) -> int:
    """Copy the site's files to ``{new_name}/`` and save it there as version 1; the old name leaves
    the list but keeps its versions (and the tables written under it stay queryable)."""
    env = load_site(store, name)
    check_name("site", new_name)
    if environment_exists(store, new_name) or list_versions(store, new_name):
        raise OnboardingError(f"site {new_name!r} already exists (or keeps a deleted site's history): "
                              "pick another name", 409)
    history = f"{name}/environment/"
    for key in store.list_keys(f"{name}/"):
        if not key.startswith(history):
            store.copy(key, f"{new_name}/{key[len(name) + 1:]}")

    def moved(camera: Camera) -> Camera:
        source = camera.source
        if source is not None and source.kind == "store" and source.uri.startswith(f"{name}/"):
            source = CameraSource("store", f"{new_name}/{source.uri[len(name) + 1:]}")
        return replace(camera, source=source)

    version = save_environment(store, replace(env, name=new_name, cameras=tuple(map(moved, env.cameras))))
    store.delete(pointer_key(name))
    return version


def restore_site(store: ObjectStore, name: str, version: int) -> int:
    """Make ``version`` current again, as a new version (a deleted site comes back too)."""
    check_name("site", name)
    if version not in list_versions(store, name):
        raise OnboardingError(f"site {name!r} has no version {version}; it has {list_versions(store, name)}", 404)
    return restore_version(store, name, version)


def check_new_camera(store: ObjectStore, env: Environment, camera: str, own_keys=()) -> None:
    """Refuse a name in use, or whose folder still holds a deleted camera's videos (kept for the
    versions that had it; new sub-videos would mix with them). ``own_keys``: videos the caller
    just wrote there itself."""
    check_name("camera", camera)
    if camera in env.camera_names:
        raise OnboardingError(f"site {env.name!r} already has a camera {camera!r}: pick another name, "
                              "or delete that camera first", 409)
    if any(key.endswith(".mp4") and key not in own_keys for key in store.list_keys(f"{env.name}/{camera}/")):
        raise OnboardingError(f"site {env.name!r} keeps the videos of an earlier camera {camera!r} (earlier "
                              "versions use them): pick another name", 409)


def _reach(url: str, timeout_s: float) -> None:
    """Raise OnboardingError naming why a stream's host does not answer (never the password)."""
    parts = urlsplit(url)
    port = parts.port or {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    shown = redact(url)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            pass
    except ConnectionRefusedError:
        raise OnboardingError(f"{shown}: connection refused: nothing listens on port {port}; check the port "
                              "and that the camera's stream is enabled", 422) from None
    except OSError:
        raise OnboardingError(f"{shown}: unreachable within {timeout_s:.0f} s: check the host name, the "
                              "network and that the camera is on", 422) from None
    if parts.scheme.lower() in ("http", "https"):
        try:
            request = urllib.request.Request(url.replace(f"{parts.username}:{parts.password}@", "")
                                             if parts.password else url)
            if parts.username:
                token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
                request.add_header("Authorization", f"Basic {token}")
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                kind = answer.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise OnboardingError(f"{shown}: authentication failed (HTTP {exc.code}): check the user "
                                      "and password in the URL", 422) from None
            raise OnboardingError(f"{shown}: the server answered HTTP {exc.code}: check the path", 422) from None
        except OSError:
            raise OnboardingError(f"{shown}: no answer within {timeout_s:.0f} s", 422) from None
        if not (kind.startswith("multipart/") or kind.startswith("video/") or kind.startswith("image/")):
            raise OnboardingError(f"{shown}: not a video: the server sends {kind}; give the camera's MJPEG "
                                  "(multipart/x-mixed-replace) URL", 422)


def snapshot(uri: str, kind: str, timeout_s: float = 5.0, name: str | None = None) -> Snapshot:
    """Open a camera source and read one frame, or say why not (unreachable, refused, authentication
    failed, not a video, unsupported codec) within about ``timeout_s``; errors show ``name`` when given
    (a store key instead of its presigned URL), else the URI without its password."""
    shown = name or redact(uri)
    if kind in ("rtsp", "http"):
        _reach(uri, timeout_s)
        timeout_ms = int(timeout_s * 1000)
        capture = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                         cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        try:
            ok, image = capture.read() if capture.isOpened() else (False, None)
            fps = float(capture.get(cv2.CAP_PROP_FPS))
        finally:
            capture.release()
        if not ok or image is None:
            raise OnboardingError(f"{shown}: the camera answers but no frame could be decoded: authentication "
                                  "failed, a wrong stream path, or an unsupported codec (use H.264 or MJPEG)", 422)
        fps = fps if math.isfinite(fps) and 0 < fps < 1000 else None
    else:  # a "file" is a path (never fetched as a URL); a "store" object may be a presigned URL
        video = Path(uri) if kind == "file" else uri
        try:
            info = probe(video)
            image = next(iter_frames(video)).image
        except VideoError as exc:
            raise OnboardingError(f"{shown}: {hide_path(str(exc), uri, name or Path(uri).name)}", 415) from None
        fps = info.fps
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return Snapshot(jpeg.tobytes(), (image.shape[1], image.shape[0]), fps)


def add_uri_camera(store: ObjectStore, environment: str, camera: str, kind: str, uri: str,
                   fps: float | None = None, timeout_s: float = 5.0) -> int:
    """Add a camera that streams from ``uri`` (``rtsp``, ``http`` or a ``file``) once a frame was read
    from it; returns the version."""
    env = load_site(store, environment)
    check_new_camera(store, env, camera)
    source = CameraSource(kind, uri)
    shot = snapshot(uri, kind, timeout_s)
    rate = fps or shot.fps
    if rate is None:
        raise OnboardingError(f"{redact(uri)} does not report its frame rate: give it (--fps F)")
    env = replace(env, cameras=env.cameras + (Camera(camera, rate, shot.size, source=source),),
                  fps=env.fps if env.cameras else rate)
    return save_environment(store, env)


def camera_source(store: ObjectStore, environment: str, camera: str) -> CameraSource:
    source = _camera(load_site(store, environment), camera).source
    if source is None:
        raise OnboardingError(f"camera {camera!r} has no source: add it again with a video or a URI", 409)
    return source


def rename_camera(store: ObjectStore, environment: str, camera: str, new_name: str) -> int:
    """Rename a camera that has no sub-videos (those live under its name, and so do its tables)."""
    env = load_site(store, environment)
    old = _camera(env, camera)
    check_new_camera(store, env, new_name)
    if store.list_keys(f"{environment}/{camera}/"):
        raise OnboardingError(f"camera {camera!r} has videos stored under its name: delete it and add it "
                              "again under the new name", 409)
    return save_environment(store, replace(env, cameras=tuple(
        replace(old, name=new_name) if c.name == camera else c for c in env.cameras)))


def enable_camera(store: ObjectStore, environment: str, camera: str, enabled: bool) -> int:
    """Disable a camera (kept, with its calibration and videos, but not materialized or streamed) or
    enable it again."""
    env = load_site(store, environment)
    return save_environment(store, _with_camera(env, replace(_camera(env, camera), enabled=enabled)))


def delete_camera(store: ObjectStore, environment: str, camera: str) -> int:
    """Remove a camera from the site (a new version; its sub-videos stay for the versions before)."""
    env = load_site(store, environment)
    _camera(env, camera)
    return save_environment(store, replace(env, cameras=tuple(c for c in env.cameras if c.name != camera)))


def read_point_pairs_csv(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(image points px, map points m) from CSV with columns image_x,image_y,map_x,map_y."""
    rows = list(csv.DictReader(io.StringIO(text)))
    header = set(rows[0]) if rows else set()
    missing = [c for c in CALIBRATION_COLUMNS if c not in header]
    if missing:
        raise OnboardingError(f"the calibration file lacks the column(s) {missing}: give a header line "
                              f"{','.join(CALIBRATION_COLUMNS)} and one point pair per line (map in metres)")
    values = np.full((len(rows), 4), np.nan)
    for line, row in enumerate(rows, start=2):
        for column, name in enumerate(CALIBRATION_COLUMNS):
            try:
                values[line - 2, column] = float(row[name])
            except (TypeError, ValueError):
                raise OnboardingError(f"calibration file line {line}: {name} is {row[name]!r}, not a number") from None
    bad = [line for line, row in enumerate(values, start=2) if not np.isfinite(row).all()]
    if bad:
        raise OnboardingError(f"calibration file lines {bad} hold NaN or infinite values: give finite numbers")
    return values[:, :2], values[:, 2:]


def _spread(points: np.ndarray) -> float:
    """Second singular value of the centred points over the first: ~0 when they lie on one line."""
    singular = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    return float(singular[1] / singular[0]) if singular[0] > 0 else 0.0


def fit_calibration(image_points, map_points,
                    max_error_m: float = DEFAULT_MAX_CALIBRATION_ERROR_M) -> CalibrationReport:
    """Fit the homography and report per-point and RMS error (metres); refuses fewer than 4 pairs,
    collinear points, and an RMS error above ``max_error_m``."""
    image = np.asarray(image_points, np.float64).reshape(-1, 2)
    world = np.asarray(map_points, np.float64).reshape(-1, 2)
    if len(image) < 4 or len(image) != len(world):
        raise OnboardingError(f"calibration needs at least 4 point pairs (one map point per image point), got "
                              f"{len(image)} image and {len(world)} map points: add pairs spread over the floor")
    if not (np.isfinite(image).all() and np.isfinite(world).all()):
        raise OnboardingError("calibration points hold NaN or infinite values: give finite numbers")
    for what, points in (("image", image), ("map", world)):
        if _spread(points) < 0.01:
            raise OnboardingError(f"the {what} points lie (almost) on one line: a homography needs points "
                                  "that span the floor, no three on one line")
    calibration = Calibration.from_point_pairs(image, world)
    errors = np.linalg.norm(apply_homography(calibration.image_to_map, image) - world, axis=1)
    rms = float(np.sqrt(np.mean(errors ** 2)))
    if not np.isfinite(rms) or rms > max_error_m:
        raise OnboardingError(f"calibration RMS error {rms:.3f} m is above the {max_error_m} m threshold: "
                              "check the pairs with the largest errors (a point clicked on the wrong spot) "
                              "or add more pairs")
    return CalibrationReport(calibration, tuple(float(e) for e in errors), rms, float(errors.max()))


def calibrate_camera(store: ObjectStore, environment: str, camera: str, image_points, map_points,
                     max_error_m: float = DEFAULT_MAX_CALIBRATION_ERROR_M) -> tuple[int, CalibrationReport]:
    env = load_site(store, environment)
    old = _camera(env, camera)
    report = fit_calibration(image_points, map_points, max_error_m)
    return save_environment(store, _with_camera(env, replace(old, calibration=report.calibration))), report


def parse_numbers(text: str, count: int, what: str) -> tuple[float, ...]:
    """``"1,2.5,..."`` -> exactly ``count`` finite floats."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count or not np.isfinite(values).all():
        raise OnboardingError(f"{what} {text!r}: give {count} comma-separated numbers")
    return values


def parse_polygon(text: str, what: str) -> np.ndarray:
    """``"x,y;x,y;..."`` -> (K, 2) floats."""
    try:
        points = np.array([[float(v) for v in pair.split(",")] for pair in text.strip().strip(";").split(";")])
    except ValueError:
        raise OnboardingError(f"{what} {text!r}: write the corners as \"x,y;x,y;x,y\"") from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise OnboardingError(f"{what} {text!r}: each corner is two numbers, \"x,y\"; corners are separated by ';'")
    return points


def _segments_cross(a, b, c, d) -> bool:
    def side(p, q, r):
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))
    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0


def check_simple_polygon(points, what: str) -> np.ndarray:
    """(K >= 3, 2) finite points of a polygon whose edges do not cross and that has an area."""
    polygon = np.asarray(points, np.float64)
    if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3 or not np.isfinite(polygon).all():
        raise OnboardingError(f"{what}: give at least 3 corners of finite numbers")
    edges = [(polygon[i], polygon[(i + 1) % len(polygon)]) for i in range(len(polygon))]
    for i in range(len(edges)):
        for j in range(i + 2, len(edges)):
            if (i, j) != (0, len(edges) - 1) and _segments_cross(*edges[i], *edges[j]):
                raise OnboardingError(f"{what} crosses itself (edges {i + 1} and {j + 1}): list the corners in "
                                      "order around the area")
    if Zone(what, polygon).area_m2 <= 0:
        raise OnboardingError(f"{what} has no area: its corners lie on one line")
    return polygon


def set_region(store: ObjectStore, environment: str, camera: str, polygon_px) -> tuple[int, np.ndarray]:
    """The floor the camera tracks people on, drawn in its image (pixels); stored in metres through
    its calibration. Returns (version, the polygon in metres)."""
    env = load_site(store, environment)
    old = _camera(env, camera)
    if old.calibration is None:
        raise OnboardingError(f"camera {camera!r} is not calibrated: calibrate it first "
                              f"(spoton env calibrate {environment} {camera} --points FILE.csv)", 409)
    pixels = check_simple_polygon(polygon_px, f"camera {camera!r} region")
    metres = apply_homography(old.calibration.image_to_map, pixels)
    if not np.isfinite(metres).all():
        raise OnboardingError(f"camera {camera!r} region reaches above the horizon of its calibration: "
                              "keep the corners on the floor")
    metres = check_simple_polygon(metres, f"camera {camera!r} region (on the floor)")
    return save_environment(store, _with_camera(env, replace(old, tracked_region_m=metres))), metres


def set_zone(store: ObjectStore, environment: str, name: str, polygon_m) -> int:
    """Add the named zone (floor metres), or replace the zone of that name."""
    env = load_site(store, environment)
    check_name("zone", name)
    zone = Zone(name, check_simple_polygon(polygon_m, f"zone {name!r}"))
    return save_environment(store, replace(env, zones=tuple(z for z in env.zones if z.name != name) + (zone,)))


def delete_zone(store: ObjectStore, environment: str, name: str) -> int:
    env = load_site(store, environment)
    if name not in [z.name for z in env.zones]:
        raise OnboardingError(f"site {environment!r} has no zone {name!r}", 404)
    return save_environment(store, replace(env, zones=tuple(z for z in env.zones if z.name != name)))


def describe(store: ObjectStore, environment: str) -> dict:
    """What ``spoton env show`` prints and the API answers: no camera password."""
    env = load_site(store, environment)
    plan = env.floor_plan
    return {
        "name": env.name, "description": env.description, "fps": env.fps, "segment_length_s": env.segment_length_s,
        "version": current_version(store, environment), "versions": list_versions(store, environment),
        "floor_plan": {"image_key": plan.image_key, "size_px": list(plan.size_px),
                       "metres_per_pixel": plan.metres_per_pixel, "origin_m": list(plan.origin_m),
                       "y_axis": plan.y_axis},
        "cameras": [{"name": c.name, "enabled": c.enabled, "fps": c.fps, "resolution": list(c.resolution), "source": shown_source(c.source),
                     "calibrated": c.calibration is not None,
                     "calibration_rms_m": None if c.calibration is None else c.calibration.reprojection_error_m,
                     "calibration": None if c.calibration is None else {
                         "image_points": c.calibration.image_points.tolist(),
                         "map_points": c.calibration.map_points.tolist(),
                         "image_to_map": c.calibration.image_to_map.tolist()},
                     "region_m": None if c.tracked_region_m is None else c.tracked_region_m.tolist(),
                     "sub_videos": sorted(k for k in store.list_keys(f"{environment}/{c.name}/")
                                          if k.endswith(".mp4"))}
                    for c in env.cameras],
        "zones": [{"name": z.name, "polygon_m": z.polygon_m.tolist()} for z in env.zones],
    }
