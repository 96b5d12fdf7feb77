"""Videos into a site as background jobs: ``POST /api/v1/sites/{site}/cameras/upload`` and ``/jobs``.

A long video is checked, transcoded when needed, cut and registered by :mod:`spoton.site.ingest`
on a worker thread (``SPOTON_SITE_JOB_WORKERS``, default 1), never inside the request:

- ``POST /sites/{site}/cameras/upload?name=CAMERA[&fps=F]`` (operator+) with the raw video as the
  body: an unknown site (404), a camera name in use or already queued (409), an empty (400) or
  oversized (413, ``SPOTON_UPLOAD_MAX_BYTES``) body are refused before any work; the body is
  streamed to a temporary file and kept at ``site_jobs/{id}/video`` until its job ends. Answers
  202 with the job and a ``Location`` header. ``POST /sites/{site}/cameras`` with ``kind: "upload"``
  (an id from ``/api/v1/videos``) queues the same job on that upload's video.
- The job goes ``queued`` -> ``processing`` (``stage``: checking, cutting (stream copy) or
  transcoding, registering; ``progress`` 0..1) -> ``done`` (``segments``, ``path``: copy or
  transcode) or ``failed`` with the ``reason`` (not a video, too long, ...).
- ``GET /sites/{site}/jobs`` (newest first) and ``GET /sites/{site}/jobs/{id}`` (viewer+).
- Records live in memory and at ``site_jobs/{id}/job.json`` in the store. A new service resumes
  the jobs it finds ``queued`` or ``processing`` (the videos a killed job left are removed first);
  a service that closes mid-job puts the job back to ``queued`` for the next start.
- ``/metrics``: ``spoton_live_site_jobs{state}`` and ``spoton_live_site_job_paths_total{path}``.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Path as PathParam, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from apps.live_api.auth import Operator, Viewer
from apps.live_api.errors import error_responses
from apps.live_api.uploads import UploadConfig, UploadService, receive_to_file
from spoton.errors import SpotOnError
from spoton.site import ingest, onboarding
from spoton.site import storage as site_storage
from spoton.site.model import NAME_PATTERN
from spoton.storage.store import ObjectStore, StoreError

log = logging.getLogger(__name__)

JOB_PREFIX = "site_jobs"
_ID = re.compile(r"^[0-9a-f]{32}$")
_PERSIST_EVERY_S = 0.5  # progress is written to the store at most this often (memory: every call)


class _Interrupted(Exception):
    """Raised from the progress callback when the service closes: the job goes back to queued."""


class SiteJob(BaseModel):
    id: str
    site: str
    camera: str
    state: Literal["queued", "processing", "done", "failed"]
    progress: float = Field(ge=0, le=1)
    stage: str = Field(description="queued, checking, cutting (stream copy) or transcoding, registering, done")
    reason: str | None = Field(description="why the job failed")
    segments: int | None = Field(description="sub-videos made (when done)")
    path: Literal["copy", "transcode"] | None = Field(
        None, description="how the video was cut: stream copy at keyframes, or transcoded to H.264")
    path_reason: str | None = Field(None, description="why that path")
    created_at: str
    updated_at: str
    url: str


class SiteJobs(BaseModel):
    jobs: list[SiteJob]


@dataclass(frozen=True)
class SiteJobRecord:
    """One job, as stored in ``site_jobs/{id}/job.json``."""

    id: str
    site: str
    camera: str
    video_key: str
    owned_video: bool  # the job's own copy of the body (deleted when it ends), not an /api/v1/videos upload
    fps: float | None
    created_unix: float
    updated_unix: float
    state: str = "queued"
    stage: str = "queued"
    progress: float = 0.0
    reason: str | None = None
    segments: int | None = None
    path: str | None = None
    path_reason: str | None = None

    @property
    def url(self) -> str:
        return f"/api/v1/sites/{self.site}/jobs/{self.id}"

    def public(self) -> dict:
        def iso(unix: float) -> str:
            return datetime.fromtimestamp(unix, timezone.utc).isoformat()

        fields = ("id", "site", "camera", "state", "progress", "stage", "reason", "segments", "path", "path_reason")
        return {**{k: getattr(self, k) for k in fields}, "progress": round(self.progress, 4),
                "created_at": iso(self.created_unix), "updated_at": iso(self.updated_unix), "url": self.url}


def job_key(job_id: str) -> str:
    return f"{JOB_PREFIX}/{job_id}/job.json"


class SiteJobService:
    """Job records (memory + store) and the worker threads that run them."""

    def __init__(self, store: ObjectStore, workers: int = 1, upload_config: UploadConfig = UploadConfig(),
                 metrics=None):
        self.store = store
        self.upload_config = upload_config
        self.metrics = metrics
        self._records: dict[str, SiteJobRecord] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="site-job")
        self._resume()

    @classmethod
    def for_app(cls, app) -> "SiteJobService":
        """The app's service, created (and interrupted jobs resumed) on first use."""
        with _APP_LOCK:
            service = getattr(app.state, "site_jobs", None)
            if service is None:
                settings = getattr(app.state, "settings", None)
                service = app.state.site_jobs = cls(
                    app.state.store, settings.site_job_workers if settings else 1,
                    UploadService.for_app(app).config, getattr(app.state, "metrics", None))
            return service

    def close(self) -> None:
        """Stop: a running job is interrupted (back to queued), queued ones wait for the next start."""
        self._closing.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _resume(self) -> None:
        for key in self.store.list_keys(JOB_PREFIX + "/"):
            if not key.endswith("/job.json"):
                continue
            try:
                record = SiteJobRecord(**json.loads(self.store.read_bytes(key)))
            except (ValueError, TypeError, StoreError):
                continue  # not a record this version wrote: leave it alone
            self._records[record.id] = record
            if record.state not in ("queued", "processing"):
                continue
            if record.state == "processing" and self._registered(record):
                continue
            if record.state == "processing":
                try:
                    removed = ingest.discard_orphan_videos(self.store, record.site, record.camera)
                except SpotOnError:
                    removed = []  # the site is gone: the job fails with that reason
                log.info("site job %s was interrupted while %s: resuming it (removed %d partial sub-videos)",
                         record.id, record.stage, len(removed))
            self._save(replace(record, state="queued", stage="queued", progress=0.0))
            self._executor.submit(self._run, record.id)

    def _registered(self, record: SiteJobRecord) -> bool:
        """A job stopped after it saved its camera (names are never reused, so the camera in the current
        version is this job's): record it done instead of running it again into a 409."""
        try:
            env = onboarding.load_site(self.store, record.site)
        except SpotOnError:
            return False
        if record.camera not in env.camera_names:
            return False
        segments = [k for k in self.store.list_keys(f"{record.site}/{record.camera}/") if k.endswith(".mp4")]
        log.info("site job %s had registered camera %s/%s before it stopped: done", record.id, record.site,
                 record.camera)
        self._save(replace(record, state="done", stage="done", progress=1.0, segments=len(segments)))
        if record.owned_video:
            self.store.delete(record.video_key)
        return True

    def _save(self, record: SiteJobRecord, persist: bool = True) -> SiteJobRecord:
        record = replace(record, updated_unix=time.time())
        if persist:
            self.store.write_bytes(job_key(record.id), json.dumps(asdict(record), indent=1).encode())
        with self._lock:
            self._records[record.id] = record
        return record

    def get(self, site: str, job_id: str) -> SiteJobRecord:
        with self._lock:
            record = self._records.get(job_id) if _ID.match(job_id or "") else None
        if record is None or record.site != site:
            raise onboarding.OnboardingError(f"site {site!r} has no job {job_id!r}: list them with "
                                             f"GET /api/v1/sites/{site}/jobs", 404)
        return record

    def list(self, site: str | None = None) -> list[SiteJobRecord]:
        with self._lock:
            records = [r for r in self._records.values() if site is None or r.site == site]
        return sorted(records, key=lambda r: r.created_unix, reverse=True)

    def check(self, site: str, camera: str) -> None:
        """Refuse up front: an unknown site (404), a camera name in use or already queued (409)."""
        onboarding.check_new_camera(self.store, onboarding.load_site(self.store, site), camera)
        pending = [r for r in self.list(site) if r.camera == camera and r.state in ("queued", "processing")]
        if pending:
            raise onboarding.OnboardingError(f"camera {camera!r} of site {site!r} is already being added by job "
                                             f"{pending[0].id} ({pending[0].state}): wait for it "
                                             f"({pending[0].url}), or pick another name", 409)

    def submit(self, site: str, camera: str, video_key: str, fps: float | None = None) -> SiteJobRecord:
        """Queue a job on a video already in the store (an /api/v1/videos upload's)."""
        with _SUBMIT_LOCK:
            self.check(site, camera)
            now = time.time()
            record = self._save(SiteJobRecord(uuid.uuid4().hex, site, camera, video_key, False, fps, now, now))
        self._executor.submit(self._run, record.id)
        return record

    def submit_file(self, site: str, camera: str, path: Path, fps: float | None = None) -> SiteJobRecord:
        """Keep a received body in the store as the job's own video and queue the job."""
        with _SUBMIT_LOCK:
            self.check(site, camera)
            job_id, now = uuid.uuid4().hex, time.time()
            video_key = f"{JOB_PREFIX}/{job_id}/video"
            self.store.upload_file(path, video_key)
            record = self._save(SiteJobRecord(job_id, site, camera, video_key, True, fps, now, now))
        self._executor.submit(self._run, record.id)
        return record

    def _run(self, job_id: str) -> None:
        if self._closing.is_set():
            return  # stays queued: the next start runs it
        with self._lock:
            record = self._records[job_id]
        record = self._save(replace(record, state="processing", stage="checking", progress=0.0, reason=None))
        last = {"stage": record.stage, "at": time.monotonic()}

        def progress(stage: str, fraction: float) -> None:
            if self._closing.is_set() and stage != "registering":  # once registering, the camera may be saved
                raise _Interrupted
            now = time.monotonic()
            persist = stage != last["stage"] or now - last["at"] >= _PERSIST_EVERY_S
            if persist:
                last.update(stage=stage, at=now)
            with self._lock:
                current = self._records[job_id]
            self._save(replace(current, stage=stage, progress=max(0.0, min(1.0, fraction))), persist)

        try:
            added = ingest.add_video_camera(self.store, record.site, record.camera,
                                            self.store.video_source(record.video_key), record.fps, progress,
                                            max_duration_s=self.upload_config.max_duration_s,
                                            shown_as="the uploaded file")
        except _Interrupted:
            log.info("site job %s interrupted by shutdown: queued again for the next start", job_id)
            self._save(replace(self._records[job_id], state="queued", stage="queued", progress=0.0))
            return
        except Exception as exc:  # any failure ends the job with its reason, never the worker
            reason = str(exc) if isinstance(exc, SpotOnError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, SpotOnError):
                log.exception("site job %s failed unexpectedly", job_id)
            log.info("site job %s (%s/%s) failed: %s", job_id, record.site, record.camera, reason)
            self._save(replace(self._records[job_id], state="failed", reason=reason))
        else:
            log.info("site job %s (%s/%s) done: %d sub-videos by %s (%s)", job_id, record.site, record.camera,
                     len(added.keys), added.path, added.why)
            self._save(replace(self._records[job_id], state="done", stage="done", progress=1.0,
                               segments=len(added.keys), path=added.path, path_reason=added.why))
            if self.metrics is not None:
                self.metrics.site_job_paths.labels(added.path).inc()
        if record.owned_video:
            self.store.delete(record.video_key)


_APP_LOCK = threading.Lock()
_SUBMIT_LOCK = threading.Lock()  # the up-front checks and the queueing, one job at a time

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])
SiteName = Annotated[str, PathParam(pattern=NAME_PATTERN.pattern, description="the site's name")]
RAW_VIDEO = {"requestBody": {"required": True, "description": "the video file's bytes",
                             "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                 "format": "binary"}}}}}


@router.post("/{site}/cameras/upload", status_code=202, response_model=SiteJob, openapi_extra=RAW_VIDEO,
             responses=error_responses(400, 401, 403, 404, 408, 409, 413, 422))
async def upload_camera(site: SiteName, request: Request, response: Response, _: Operator,
                        name: str = Query(pattern=NAME_PATTERN.pattern, description="the new camera's name"),
                        fps: float | None = Query(None, gt=0, description="the camera's rate (default: the video's)")) -> dict:
    """Add a camera from a video sent as the raw body: answers the queued job (poll its ``url``)."""
    service = SiteJobService.for_app(request.app)
    await run_in_threadpool(service.check, site, name)  # before a byte of the body is read
    path = await receive_to_file(request, service.upload_config)
    try:
        record = await run_in_threadpool(service.submit_file, site, name, path, fps)
    finally:
        path.unlink(missing_ok=True)
    response.headers["Location"] = record.url
    return record.public()


@router.get("/{site}/jobs", response_model=SiteJobs, responses=error_responses(401, 403, 404, 422))
def list_jobs(site: SiteName, request: Request, _: Viewer) -> dict:
    """The site's camera upload jobs, newest first (a deleted site keeps its versions, so its jobs too)."""
    service = SiteJobService.for_app(request.app)
    jobs = service.list(site)
    if not jobs and not site_storage.list_versions(service.store, site):
        raise onboarding.OnboardingError(f"no site {site!r}: GET /api/v1/sites lists them", 404)
    return {"jobs": [r.public() for r in jobs]}


@router.get("/{site}/jobs/{job_id}", response_model=SiteJob, responses=error_responses(401, 403, 404, 422))
def get_job(site: SiteName, job_id: str, request: Request, _: Viewer) -> dict:
    return SiteJobService.for_app(request.app).get(site, job_id).public()
