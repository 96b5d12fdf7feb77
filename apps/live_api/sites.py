"""Sites: bring your own floor plan, cameras, calibration, region and zones (``/api/v1/sites``).

The routes parse and answer; the operations are :mod:`spoton.site.onboarding` (shared with
``spoton env ...``), so every edit saves a new version of the site and bad input (its
``OnboardingError`` status: 404, 409, 413, 415, 422) changes nothing. Viewers look,
operators (and admins) edit. Camera sources are answered with their password replaced by ``***``.

- ``POST /sites?name=N&metres_per_pixel=M`` (or ``scale_points=x1,y1,x2,y2&distance_m=D``) with the
  floor-plan image (PNG or JPEG) as the body creates a site; ``/rename``, ``DELETE`` (its history
  stays: versions, videos, tables), ``/versions`` and ``/versions/{n}/restore``.
- Cameras: add by URI (``rtsp``, ``http`` MJPEG, a ``file`` under the server's media roots) or by
  an upload id (``kind: "upload"``, from ``POST /api/v1/videos``: answers 202 with a background job,
  :mod:`apps.live_api.site_jobs`, that cuts it into sub-videos of the site's segment length where the
  sensor finds them; ``POST .../cameras/upload`` takes the video itself); ``POST /sites/{site}/cameras/test`` answers
  a snapshot JPEG or why not within a few seconds; rename, disable (``PUT .../enabled``), delete, ``GET .../snapshot``.
- Calibration: ``.../calibration/check`` fits point pairs and answers per-point and RMS error
  without saving; ``PUT .../calibration`` saves it; ``.../region`` (image pixels) and ``/zones``
  (floor metres).
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from apps.live_api.auth import Operator, Viewer
from apps.live_api.errors import error_responses
from apps.live_api.deps import get_store
from apps.live_api.media import media_url
from apps.live_api.site_jobs import SiteJob, SiteJobService
from apps.live_api.uploads import resolve_upload
from spoton.site import onboarding
from spoton.site import storage as site_storage
from spoton.site.model import NAME_PATTERN, check_name
from spoton.live.sources import SourceSpec

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])
Point = tuple[float, float]
NAME = NAME_PATTERN.pattern
SiteName = Annotated[str, Path(pattern=NAME, description="the site's name")]
CameraName = Annotated[str, Path(pattern=NAME)]


class FloorPlanShown(BaseModel):
    image_key: str | None
    image_url: str | None = Field(description="the plan image through GET /api/v1/media")
    size_px: list[int]
    metres_per_pixel: float
    origin_m: list[float] = Field(description="floor metres at the image's top-left corner")
    y_axis: Literal["up", "down"]


class CameraSourceShown(BaseModel):
    kind: str
    uri: str = Field(description="the source URI, its password replaced by ***")


class CameraCalibration(BaseModel):
    image_points: list[Point] = Field(description="pixels")
    map_points: list[Point] = Field(description="floor metres")
    image_to_map: list[list[float]] = Field(description="3x3 homography, image pixels to floor metres")


class SiteCamera(BaseModel):
    name: str
    enabled: bool = Field(description="false: kept, but not materialized or streamed")
    fps: float
    resolution: list[int]
    source: CameraSourceShown | None
    calibrated: bool
    calibration_rms_m: float | None
    calibration: CameraCalibration | None = Field(description="the saved pairs and homography (the page's grid)")
    region_m: list[Point] | None
    sub_videos: list[str]


class SiteZone(BaseModel):
    name: str
    polygon_m: list[Point]


class Site(BaseModel):
    name: str
    description: str
    fps: float
    segment_length_s: float | None
    version: int | None
    versions: list[int]
    floor_plan: FloorPlanShown
    cameras: list[SiteCamera]
    zones: list[SiteZone]


class Sites(BaseModel):
    sites: list[Site]


class Saved(BaseModel):
    site: str
    version: int = Field(description="the site's new current version")


class Versions(BaseModel):
    site: str
    current: int | None
    versions: list[int]


class CalibrationReport(BaseModel):
    rms_error_m: float
    max_error_m: float
    point_errors_m: list[float] = Field(description="per pair, metres between its map point and its image point mapped")
    image_to_map: list[list[float]]
    version: int | None = Field(None, description="the saved version (None: only checked)")


class Enabled(BaseModel):
    enabled: bool


class Rename(BaseModel):
    name: str = Field(pattern=NAME)


class CameraBody(BaseModel):
    name: str = Field(pattern=NAME)
    kind: Literal["rtsp", "http", "file", "upload"]
    uri: str = Field(min_length=1, description="the stream URL, the file path, or the upload id")
    fps: float | None = Field(None, gt=0, description="the camera's frame rate (default: what the source says)")


class SourceBody(BaseModel):
    kind: Literal["rtsp", "http", "file"]
    uri: str = Field(min_length=1)


class PointPairs(BaseModel):
    image_points: list[Point] = Field(min_length=4, description="pixels")
    map_points: list[Point] = Field(min_length=4, description="floor metres, one per image point")
    max_error_m: float = Field(onboarding.DEFAULT_MAX_CALIBRATION_ERROR_M, gt=0)


class Polygon(BaseModel):
    polygon: list[Point] = Field(min_length=3)


class ZoneBody(BaseModel):
    name: str = Field(pattern=NAME)
    polygon_m: list[Point] = Field(min_length=3)


def _site(store, name: str) -> dict:
    site = onboarding.describe(store, name)
    key = site["floor_plan"]["image_key"]
    site["floor_plan"]["image_url"] = media_url(f"{name}/{key}") if key else None
    return site


def _check_source(request: Request, kind: str, uri: str) -> None:
    """Streams and files go through the server's source allow-list, as session sources do."""
    settings = getattr(request.app.state, "settings", None)
    spec = SourceSpec(kind, uri)
    if settings is not None:
        settings.source_allow_list().check(spec)


@router.get("", response_model=Sites, responses=error_responses(401, 403))
def list_sites(request: Request, _: Viewer) -> dict:
    store = get_store(request)
    return {"sites": [_site(store, env.name) for env in onboarding.list_sites(store)]}


@router.post("", status_code=201, response_model=Site,
             responses=error_responses(400, 401, 403, 409, 413, 415, 422))
async def create_site(request: Request, _: Operator, name: str = Query(pattern=NAME),
                      metres_per_pixel: float | None = Query(None, gt=0),
                      scale_points: str | None = Query(None, description="x1,y1,x2,y2: two plan pixels"),
                      distance_m: float | None = Query(None, gt=0, description="metres between the scale points"),
                      origin_m: str = Query("0,0", description="X,Y floor metres at the plan's top-left corner"),
                      y_axis: Literal["up", "down"] = "down", segment_length_s: float = Query(60.0, gt=0)) -> dict:
    """Create a site; the body is the floor-plan image (PNG or JPEG)."""
    if (metres_per_pixel is None) == (scale_points is None or distance_m is None):
        raise onboarding.OnboardingError("give the plan's scale: metres_per_pixel, or scale_points=x1,y1,x2,y2 "
                                         "with distance_m (the metres between those two plan pixels)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > onboarding.MAX_FLOOR_PLAN_BYTES:
        raise onboarding.OnboardingError(f"the floor plan is {declared} bytes, over the "
                                         f"{onboarding.MAX_FLOOR_PLAN_BYTES} byte limit: save it smaller", 413)
    scale = metres_per_pixel or onboarding.scale_from_points(
        *onboarding.parse_numbers(scale_points, 4, "scale_points"), distance_m)
    origin = onboarding.parse_numbers(origin_m, 2, "origin_m")
    store = get_store(request)
    onboarding.create_site(store, name, await request.body(), scale, origin, y_axis,
                           segment_length_s=segment_length_s)
    return _site(store, name)


@router.get("/{site}", response_model=Site, responses=error_responses(401, 403, 404, 422))
def get_site(site: SiteName, request: Request, _: Viewer) -> dict:
    return _site(get_store(request), site)


@router.post("/{site}/rename", response_model=Site, responses=error_responses(400, 401, 403, 404, 409, 422))
def rename_site(site: SiteName, body: Rename, request: Request, _: Operator) -> dict:
    store = get_store(request)
    onboarding.rename_site(store, site, body.name)
    return _site(store, body.name)


@router.delete("/{site}", status_code=204, responses=error_responses(401, 403, 404, 422))
def delete_site(site: SiteName, request: Request, _: Operator) -> Response:
    """Take the site out of the list; its versions, videos and tables stay (restore a version to undo)."""
    onboarding.delete_site(get_store(request), site)
    return Response(status_code=204)


@router.get("/{site}/versions", response_model=Versions, responses=error_responses(401, 403, 422))
def list_versions(site: SiteName, request: Request, _: Viewer) -> dict:
    store = get_store(request)
    check_name("site", site)
    return {"site": site, "current": site_storage.current_version(store, site),
            "versions": site_storage.list_versions(store, site)}


@router.post("/{site}/versions/{version}/restore", response_model=Saved,
             responses=error_responses(401, 403, 404, 422))
def restore_version(site: SiteName, version: int, request: Request, _: Operator) -> dict:
    return {"site": site, "version": onboarding.restore_site(get_store(request), site, version)}


@router.post("/{site}/cameras", status_code=201, response_model=Site,
             responses={202: {"model": SiteJob, "description": "kind upload: the queued job (poll its url)"}}
             | error_responses(400, 401, 403, 404, 409, 415, 422))
def add_camera(site: SiteName, body: CameraBody, request: Request, _: Operator):
    """Add a camera by URI (its source is tested by reading a frame: 201 with the site) or from an
    uploaded video (202 with the job that cuts it into sub-videos, see ``GET .../jobs/{id}``)."""
    store = get_store(request)
    if body.kind == "upload":
        key = resolve_upload(body.uri, store)
        record = SiteJobService.for_app(request.app).submit(site, body.name, key, body.fps)
        return JSONResponse(record.public(), status_code=202, headers={"Location": record.url})
    _check_source(request, body.kind, body.uri)
    onboarding.add_uri_camera(store, site, body.name, body.kind, body.uri, body.fps)
    return _site(store, site)


JPEG = {200: {"content": {"image/jpeg": {}}, "description": "one frame of the source"}}


@router.post("/{site}/cameras/test", response_class=Response,
             responses=JPEG | error_responses(400, 401, 403, 404, 415, 422))
def test_connection(site: SiteName, body: SourceBody, request: Request, _: Operator) -> Response:
    """Read one frame of a source: a JPEG snapshot, or why not (unreachable, refused, authentication
    failed, not a video, unsupported codec) within a few seconds."""
    onboarding.load_site(get_store(request), site)
    _check_source(request, body.kind, body.uri)
    return Response(onboarding.snapshot(body.uri, body.kind).jpeg, media_type="image/jpeg")


@router.get("/{site}/cameras/{camera}/snapshot", response_class=Response,
            responses=JPEG | error_responses(401, 403, 404, 415, 422))
def camera_snapshot(site: SiteName, camera: CameraName, request: Request, _: Viewer) -> Response:
    """A frame of the camera's source: what its calibration and region are drawn on."""
    store = get_store(request)
    source = onboarding.camera_source(store, site, camera)
    if source.kind == "store":  # a file, or a presigned URL on S3 (errors name the key)
        shot = onboarding.snapshot(store.video_source(source.uri), "store", name=source.uri)
    else:
        shot = onboarding.snapshot(source.uri, source.kind)
    return Response(shot.jpeg, media_type="image/jpeg")


@router.post("/{site}/cameras/{camera}/rename", response_model=Site,
             responses=error_responses(400, 401, 403, 404, 409, 422))
def rename_camera(site: SiteName, camera: CameraName, body: Rename, request: Request, _: Operator) -> dict:
    store = get_store(request)
    onboarding.rename_camera(store, site, camera, body.name)
    return _site(store, site)


@router.put("/{site}/cameras/{camera}/enabled", response_model=Saved,
            responses=error_responses(400, 401, 403, 404, 422))
def enable_camera(site: SiteName, camera: CameraName, body: Enabled, request: Request, _: Operator) -> dict:
    """Disable a camera (kept with its calibration and videos; not materialized or streamed), or enable it."""
    return {"site": site, "version": onboarding.enable_camera(get_store(request), site, camera, body.enabled)}


@router.delete("/{site}/cameras/{camera}", response_model=Saved, responses=error_responses(401, 403, 404, 422))
def delete_camera(site: SiteName, camera: CameraName, request: Request, _: Operator) -> dict:
    return {"site": site, "version": onboarding.delete_camera(get_store(request), site, camera)}


def _report(report: onboarding.CalibrationReport, version: int | None) -> dict:
    return {"rms_error_m": report.rms_error_m, "max_error_m": report.max_error_m,
            "point_errors_m": list(report.point_errors_m),
            "image_to_map": report.calibration.image_to_map.tolist(), "version": version}


@router.post("/{site}/cameras/{camera}/calibration/check", response_model=CalibrationReport,
             responses=error_responses(400, 401, 403, 404, 422))
def check_calibration(site: SiteName, camera: CameraName, body: PointPairs, request: Request, _: Viewer) -> dict:
    """Fit the pairs and answer the errors; saves nothing (refused sets: 422 saying why)."""
    onboarding.camera_source(get_store(request), site, camera)  # 404 for an unknown site or camera
    return _report(onboarding.fit_calibration(body.image_points, body.map_points, body.max_error_m), None)


@router.put("/{site}/cameras/{camera}/calibration", response_model=CalibrationReport,
            responses=error_responses(400, 401, 403, 404, 422))
def save_calibration(site: SiteName, camera: CameraName, body: PointPairs, request: Request, _: Operator) -> dict:
    version, report = onboarding.calibrate_camera(get_store(request), site, camera, body.image_points,
                                                  body.map_points, body.max_error_m)
    return _report(report, version)


@router.put("/{site}/cameras/{camera}/region", response_model=Saved,
            responses=error_responses(400, 401, 403, 404, 409, 422))
def set_region(site: SiteName, camera: CameraName, body: Polygon, request: Request, _: Operator) -> dict:
    """The floor the camera tracks people on, drawn in its image (``polygon`` in pixels)."""
    version, _metres = onboarding.set_region(get_store(request), site, camera, body.polygon)
    return {"site": site, "version": version}


@router.put("/{site}/zones", response_model=Saved, responses=error_responses(400, 401, 403, 404, 422))
def set_zone(site: SiteName, body: ZoneBody, request: Request, _: Operator) -> dict:
    """Add the named zone, or replace the zone of that name."""
    return {"site": site, "version": onboarding.set_zone(get_store(request), site, body.name, body.polygon_m)}


@router.delete("/{site}/zones/{zone}", response_model=Saved, responses=error_responses(401, 403, 404, 422))
def delete_zone(site: SiteName, zone: Annotated[str, Path(pattern=NAME)], request: Request, _: Operator) -> dict:
    return {"site": site, "version": onboarding.delete_zone(get_store(request), site, zone)}
