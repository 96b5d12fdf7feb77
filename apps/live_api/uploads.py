"""Video uploads: ``POST /api/v1/videos`` streams a video into the object store and queues a job
that extracts frames (JPEG, every ``frame_interval_s``), a thumbnail and the video's metadata.

- The body is the video itself (``Content-Type: application/octet-stream`` or ``video/*``; e.g.
  ``curl -H "Authorization: Bearer K" --data-binary @v.mp4 URL/api/v1/videos?filename=v.mp4``).
  It is written to a temporary file in chunks (never whole in memory) and refused with 413 as
  soon as it passes ``max_bytes`` (at once when ``Content-Length`` already says so). A client
  that stops sending mid-body gets 408 after ``idle_timeout_s`` without a byte, and its temporary
  file is removed. Slow *headers* never reach the app: uvicorn (0.54) caps their size
  (``h11_max_incomplete_event_size``, 16 KiB) but starts ``timeout_keep_alive`` only after a
  response, so a client that trickles a request's headers holds its connection; bound that in the
  reverse proxy (nginx ``client_header_timeout``) and with uvicorn's ``limit_concurrency``.
- Uploads share a quota (``quota_bytes`` over the videos of every upload not failed, store prefix
  ``uploads/``; uploads are not tied to an environment): one that would pass it is refused with 413
  saying how much is used. ``DELETE /api/v1/videos/{id}`` (operator or higher) frees its share.
- The type is learned from the content, never the file name: the container is sniffed from its
  magic bytes and :func:`spoton.video.probe` must open it and decode its first frame (else 415,
  e.g. a text file or an MP4 cut before its index); longer than ``max_duration_s`` is 422.
- Accepted videos go to ``uploads/{id}/video.{ext}`` and a job record ``uploads/{id}/upload.json``
  (state ``queued``) answers ``202``. One worker thread runs jobs in order: ``processing``, then
  ``done`` with ``frames/NNNNNN.jpg``, ``thumbnail.jpg`` and metadata, or ``failed`` with the
  reason (e.g. a file whose decoding stops with an error before the end of its stream: truncated).
  Container frame counts are estimates (a valid MKV cut with ``-c copy`` declares more frames than
  it has), so truncation is judged by ffmpeg decoding the whole stream without error, not by counts.
- A failed job's video, thumbnail and frames are deleted (only its record and reason stay), so
  the media route and session sources never serve a video that failed.
- Job state lives in memory and in the JSON record in the store, so it survives a restart: a new
  service re-queues the jobs it finds ``queued`` or ``processing``. The store has the last word:
  an upload whose record is gone from it (deleted by retention, ``spoton.storage.retention``, or by
  another instance) is forgotten when the list, the quota or that upload is next read.

Roles: admin uploads, operator deletes, viewer reads. The routes find the service on
``app.state.uploads`` and create it on first use from ``app.state.store``;
``UploadService.for_app(app)`` does it eagerly.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Mapping

import cv2
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from apps.live_api.api_models import Upload, UploadFrames, Uploads
from apps.live_api.auth import Admin, Operator, Viewer
from apps.live_api.media import media_url
from spoton.errors import SpotOnError, VideoError
from spoton.redact import hide_path
from spoton.live.sources import SourceError
from spoton.storage.store import ObjectStore, StoreError
from spoton.video import VideoInfo, _ffmpeg_exe, iter_frames, probe, sample_indices

UPLOAD_PREFIX = "uploads"
_ID = re.compile(r"^[0-9a-f]{32}$")
# (magic bytes at offset, offset, extension); ISO-BMFF (MP4/MOV) has 'ftyp' at byte 4
_CONTAINERS = ((b"ftyp", 4, "mp4"), (b"RIFF", 0, "avi"), (b"\x1a\x45\xdf\xa3", 0, "mkv"))

router = APIRouter(prefix="/api/v1", tags=["uploads"])


class UploadError(SourceError):
    """An upload id that is unknown or whose video cannot be used; ``status`` is the HTTP code.

    A SourceError, so a session given a bad upload id answers it like any other bad source.
    """

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True)
class UploadConfig:
    """Limits and cadence; ``from_env`` names the variable of each."""

    max_bytes: int = 512 * 1024 * 1024
    max_duration_s: float = 600.0
    frame_interval_s: float = 1.0  # one extracted frame per this many seconds of video
    thumbnail_width: int = 320
    jpeg_quality: int = 85
    chunk_bytes: int = 1024 * 1024
    idle_timeout_s: float = 30.0  # a body that sends nothing for this long is cut off (408)
    quota_bytes: int = 20 * 1024 ** 3  # all uploads' videos together

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "UploadConfig":
        env = os.environ if env is None else env
        try:
            config = cls(
                max_bytes=int(env.get("SPOTON_UPLOAD_MAX_BYTES", cls.max_bytes)),
                max_duration_s=float(env.get("SPOTON_UPLOAD_MAX_DURATION_S", cls.max_duration_s)),
                frame_interval_s=float(env.get("SPOTON_UPLOAD_FRAME_INTERVAL_S", cls.frame_interval_s)),
                idle_timeout_s=float(env.get("SPOTON_UPLOAD_IDLE_TIMEOUT_S", cls.idle_timeout_s)),
                quota_bytes=int(env.get("SPOTON_UPLOAD_QUOTA_BYTES", cls.quota_bytes)))
        except ValueError as exc:
            raise ValueError(f"bad SPOTON_UPLOAD_* setting: {exc}") from None
        if min(config.max_bytes, config.max_duration_s, config.frame_interval_s, config.idle_timeout_s,
               config.quota_bytes) <= 0:
            raise ValueError("SPOTON_UPLOAD_MAX_BYTES, SPOTON_UPLOAD_MAX_DURATION_S, SPOTON_UPLOAD_FRAME_INTERVAL_S, "
                             "SPOTON_UPLOAD_IDLE_TIMEOUT_S and SPOTON_UPLOAD_QUOTA_BYTES must be positive")
        return config


@dataclass(frozen=True)
class ExtractedFrame:
    index: int  # source frame index
    ts: float  # seconds from the video start
    key: str


@dataclass(frozen=True)
class UploadRecord:
    """One upload job, as stored in ``uploads/{id}/upload.json``."""

    id: str
    state: str
    filename: str
    size_bytes: int
    video_key: str
    created_unix: float
    frame_interval_s: float
    video: dict = field(default_factory=dict)  # codec, width, height, fps, frame_count, duration_s
    thumbnail_key: str | None = None
    frames: tuple[ExtractedFrame, ...] = ()
    error: str | None = None
    updated_unix: float = 0.0

    @property
    def record_key(self) -> str:
        return record_key(self.id)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "UploadRecord":
        frames = tuple(ExtractedFrame(**f) for f in data.get("frames", ()))
        return cls(**{**data, "frames": frames})

    def public(self) -> dict:
        """What ``GET /videos/{id}`` answers: the record plus media URLs, without the frame list."""
        body = {k: v for k, v in self.to_json().items() if k != "frames"}
        body["frame_count_extracted"] = len(self.frames)
        body["video_url"] = media_url(self.video_key) if self.state != "failed" else None  # deleted
        body["thumbnail_url"] = media_url(self.thumbnail_key) if self.thumbnail_key else None
        body["frames_url"] = f"/api/v1/videos/{self.id}/frames"
        return body


def record_key(upload_id: str) -> str:
    return f"{UPLOAD_PREFIX}/{upload_id}/upload.json"


def sniff_container(path: Path) -> str | None:
    """The container's file extension from its magic bytes, None when unrecognised."""
    with path.open("rb") as handle:
        head = handle.read(16)
    for magic, offset, extension in _CONTAINERS:
        if head[offset:offset + len(magic)] == magic:
            return extension
    return None


def decode_errors(path: Path, timeout_s: float) -> str:
    """What ffmpeg reports while decoding the whole video stream ('' when it reaches the end cleanly).

    The messages lose ffmpeg's ``[demuxer @ 0x...]`` prefixes and any file path (they go to clients).
    """
    try:
        result = subprocess.run([_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-threads", "1",
                                 "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
                                capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"decoding took over {timeout_s:.0f} s"
    lines = [re.sub(r"^(\[[^]]*\]\s*)+", "", line).replace(str(path), "<video>")
             for line in result.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines and result.returncode != 0:
        lines = [f"ffmpeg exited with {result.returncode}"]
    return "; ".join(dict.fromkeys(lines))[:300]


def check_video(path: Path, config: UploadConfig) -> tuple[VideoInfo, str]:
    """Probe the content; raises UploadError 415 (not a usable video) or 422 (too long)."""
    try:
        info = probe(path)
    except VideoError as exc:
        raise UploadError(415, f"the upload is not a usable video: {hide_path(str(exc), path, 'the upload')}") from None
    extension = sniff_container(path)
    if extension is None:
        raise UploadError(415, f"unsupported container ({info.codec} video in an unrecognised "
                               "container): upload MP4, AVI or MKV")
    if info.duration_s > config.max_duration_s:
        raise UploadError(422, f"video is {info.duration_s:.1f} s long, over the "
                               f"{config.max_duration_s:.0f} s limit (SPOTON_UPLOAD_MAX_DURATION_S): "
                               "cut it shorter")
    return info, extension


class UploadService:
    """Upload records (memory + store) and the one worker thread that processes jobs."""

    def __init__(self, store: ObjectStore, config: UploadConfig = UploadConfig()):
        self.store = store
        self.config = config
        self._records: dict[str, UploadRecord] = {}
        self._deleted: set[str] = set()
        self._lock = threading.Lock()
        self._accept_lock = threading.Lock()  # quota check and store write, one upload at a time
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-job")
        self._resume()

    @classmethod
    def for_app(cls, app) -> "UploadService":
        """The app's service, created (and interrupted jobs resumed) on first use."""
        with _APP_LOCK:
            service = getattr(app.state, "uploads", None)
            if service is None:
                service = app.state.uploads = cls(app.state.store, UploadConfig.from_env())
            return service

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _resume(self) -> None:
        for key in self.store.list_keys(UPLOAD_PREFIX + "/"):
            if not key.endswith("/upload.json"):
                continue
            try:
                record = UploadRecord.from_json(json.loads(self.store.read_bytes(key)))
            except (ValueError, TypeError, StoreError):
                continue  # not a record this version wrote: leave it alone
            self._records[record.id] = record
            if record.state == "failed":  # an older version kept a failed upload's media
                self._remove(record.id, keep_record=True)
            if record.state in ("queued", "processing"):
                self._save(replace(record, state="queued"))
                self._executor.submit(self._process, record.id)

    def _save(self, record: UploadRecord) -> UploadRecord:
        if record.id in self._deleted:
            return record  # deleted while its job ran: write nothing more
        record = replace(record, updated_unix=time.time())
        self.store.write_bytes(record.record_key, json.dumps(record.to_json(), indent=1).encode())
        with self._lock:
            self._records[record.id] = record
        return record

    def _forget(self, upload_ids) -> None:
        """Uploads whose record left the store: never listed or written again."""
        with self._lock:
            for upload_id in upload_ids:
                self._records.pop(upload_id, None)
                self._deleted.add(upload_id)

    def _sync(self) -> None:
        """Forget the uploads whose record is no longer in the store (one listing). Records saved while
        it lists are kept: a record is written to the store before it is known here."""
        with self._lock:
            known = set(self._records)
        present = {key.split("/")[1] for key in self.store.list_keys(UPLOAD_PREFIX + "/")
                   if key.endswith("/upload.json")}
        self._forget(known - present)

    def get(self, upload_id: str) -> UploadRecord:
        with self._lock:
            record = self._records.get(upload_id) if _ID.match(upload_id or "") else None
        if record is not None and not self.store.exists(record.record_key):
            self._forget([upload_id])
            record = None
        if record is None:
            raise UploadError(404, f"no upload {upload_id!r}: POST /api/v1/videos first, and use the "
                                   "id it returns")
        return record

    def list(self) -> list[UploadRecord]:
        self._sync()
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.created_unix)

    def used_bytes(self) -> int:
        """The quota's use: the videos of all uploads that did not fail (those are deleted)."""
        self._sync()
        with self._lock:
            return sum(r.size_bytes for r in self._records.values() if r.state != "failed")

    def check_quota(self, size_bytes: int) -> None:
        """Raises UploadError 413 when ``size_bytes`` more would pass the quota."""
        used = self.used_bytes()
        if used + size_bytes > self.config.quota_bytes:
            raise UploadError(413, f"upload quota exceeded: {used} of {self.config.quota_bytes} bytes "
                                   f"(SPOTON_UPLOAD_QUOTA_BYTES) are used and this upload is {size_bytes} "
                                   "bytes; delete old uploads (DELETE /api/v1/videos/{id}) first")

    def accept(self, path: Path, filename: str) -> UploadRecord:
        """Validate a received file, move it into the store and queue its job."""
        info, extension = check_video(path, self.config)
        upload_id = uuid.uuid4().hex
        video_key = f"{UPLOAD_PREFIX}/{upload_id}/video.{extension}"
        size_bytes = path.stat().st_size
        with self._accept_lock:
            self.check_quota(size_bytes)
            self.store.upload_file(path, video_key)
            record = self._save(UploadRecord(
                id=upload_id, state="queued", filename=filename, size_bytes=size_bytes,
                video_key=video_key, created_unix=time.time(),
                frame_interval_s=self.config.frame_interval_s, video=_metadata(info)))
        self._executor.submit(self._process, upload_id)
        return record

    def delete(self, upload_id: str) -> None:
        """Forget an upload and remove its record, video, thumbnail and frames from the store.

        A job still running finishes into nothing: ``_process`` removes what it wrote after.
        """
        self.get(upload_id)  # 404 for an unknown id
        with self._lock:
            self._deleted.add(upload_id)
            self._records.pop(upload_id, None)
        self._remove(upload_id, keep_record=False)

    def _remove(self, upload_id: str, keep_record: bool) -> None:
        for key in self.store.list_keys(f"{UPLOAD_PREFIX}/{upload_id}/"):
            if not (keep_record and key == record_key(upload_id)):
                self.store.delete(key)

    def _process(self, upload_id: str) -> None:
        try:
            record = self._save(replace(self.get(upload_id), state="processing", error=None))
        except UploadError:
            return  # deleted while queued
        try:
            record = self._extract(record)
        except Exception as exc:  # any failure ends the job with its reason, never the worker
            reason = str(exc) if isinstance(exc, SpotOnError) else f"{type(exc).__name__}: {exc}"
            self._remove(upload_id, keep_record=True)  # a failed video is never served: gone before it says failed
            self._save(replace(record, state="failed", frames=(), thumbnail_key=None, error=reason))
        else:
            self._save(replace(record, state="done"))
        if upload_id in self._deleted:  # deleted mid-job: remove what the job wrote since
            self._remove(upload_id, keep_record=False)
            with self._lock:
                self._records.pop(upload_id, None)

    def _extract(self, record: UploadRecord) -> UploadRecord:
        path = self.store.video_source(record.video_key)  # a file, or a presigned URL on S3 (no copy)
        info = probe(path)
        keep = set(sample_indices(info.frame_count, info.fps, 1.0 / self.config.frame_interval_s).tolist())
        quality = [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
        frames: list[ExtractedFrame] = []
        decoded = 0
        thumbnail_key = None
        for frame in iter_frames(path):
            decoded += 1
            if frame.index == 0:
                thumbnail_key = f"{UPLOAD_PREFIX}/{record.id}/thumbnail.jpg"
                self.store.write_bytes(thumbnail_key, _jpeg(_thumbnail(frame.image, self.config), quality))
            if frame.index in keep:
                key = f"{UPLOAD_PREFIX}/{record.id}/frames/{frame.index:06d}.jpg"
                self.store.write_bytes(key, _jpeg(frame.image, quality))
                frames.append(ExtractedFrame(index=frame.index, ts=round(frame.ts, 6), key=key))
        record = replace(record, frames=tuple(frames), thumbnail_key=thumbnail_key)
        errors = decode_errors(path, timeout_s=max(60.0, 4 * info.duration_s))
        if errors:
            raise VideoError(f"decoding stopped before the end of the stream after {decoded} frames "
                             f"({errors}): the video is truncated or corrupt; upload it again")
        metadata = {**_metadata(info), "frame_count": decoded, "duration_s": decoded / info.fps}
        return replace(record, video=metadata)


_APP_LOCK = threading.Lock()


def _metadata(info: VideoInfo) -> dict:
    return {"codec": info.codec, "width": info.width, "height": info.height, "fps": info.fps,
            "frame_count": info.frame_count, "duration_s": round(info.duration_s, 3)}


def _thumbnail(image, config: UploadConfig):
    height, width = image.shape[:2]
    size = (config.thumbnail_width, max(1, round(height * config.thumbnail_width / width)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _jpeg(image, quality: list[int]) -> bytes:
    ok, data = cv2.imencode(".jpg", image, quality)
    if not ok:
        raise VideoError("JPEG encoding failed")
    return data.tobytes()


def resolve_upload(upload_id: str, store: ObjectStore) -> str:
    """The store key of an upload's video, for sessions with a source ``kind="upload"``.

    Raises UploadError 404 for an unknown id and 409 for a job that failed (its reason included).
    """
    if not _ID.match(upload_id or ""):
        raise UploadError(404, f"no upload {upload_id!r}: upload ids are the 32-hex 'id' that "
                               "POST /api/v1/videos returns")
    try:
        record = UploadRecord.from_json(json.loads(store.read_bytes(record_key(upload_id))))
    except StoreError:
        raise UploadError(404, f"no upload {upload_id!r} in the store: POST /api/v1/videos first") from None
    if record.state == "failed":
        raise UploadError(409, f"upload {upload_id} failed ({record.error}): upload the video again")
    return record.video_key


def _service(request: Request) -> UploadService:
    return UploadService.for_app(request.app)


def _http(error: UploadError) -> HTTPException:
    return HTTPException(error.status, str(error))


async def receive_to_file(request: Request, config: UploadConfig, check_quota=None) -> Path:
    """Stream the body into a temp file, refusing it (413) as soon as it is too large or over the
    quota (``check_quota(size)`` raises UploadError), and (408) when the client sends nothing for
    ``idle_timeout_s``. The caller deletes the file."""
    too_large = HTTPException(413, f"upload larger than {config.max_bytes} bytes "
                                   "(SPOTON_UPLOAD_MAX_BYTES): cut or re-encode the video")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        if int(declared) > config.max_bytes:
            raise too_large
        try:
            if check_quota is not None:
                check_quota(int(declared))
        except UploadError as exc:
            raise _http(exc) from None
    handle = tempfile.NamedTemporaryFile(prefix="spoton-upload-", suffix=".part", delete=False)
    path = Path(handle.name)
    try:
        received = 0
        chunks = aiter(request.stream())
        with handle:
            while True:
                try:
                    chunk = await asyncio.wait_for(anext(chunks), config.idle_timeout_s)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    raise HTTPException(408, f"no upload data for {config.idle_timeout_s:g} s after "
                                             f"{received} bytes (SPOTON_UPLOAD_IDLE_TIMEOUT_S): send "
                                             "the body without pauses") from None
                received += len(chunk)
                if received > config.max_bytes:
                    raise too_large
                await run_in_threadpool(handle.write, chunk)
        if received == 0:
            raise HTTPException(400, "empty upload: send the video file as the request body "
                                     "(curl --data-binary @video.mp4)")
        return path
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@router.post("/videos", status_code=202, response_model=Upload)
async def upload_video(request: Request, _: Admin, filename: str = "upload") -> dict:
    """Upload a video as the raw request body; answers the queued job."""
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise HTTPException(415, "send the video as the raw request body (Content-Type: "
                                 "application/octet-stream or video/*), not as a multipart form")
    service = _service(request)
    path = await receive_to_file(request, service.config, service.check_quota)
    try:
        record = await run_in_threadpool(service.accept, path, filename[:200])
    except UploadError as exc:
        raise _http(exc) from None
    finally:
        path.unlink(missing_ok=True)
    return record.public()


@router.get("/videos", response_model=Uploads)
def list_videos(request: Request, _: Viewer) -> dict:
    return {"videos": [record.public() for record in _service(request).list()]}


@router.get("/videos/{upload_id}", response_model=Upload)
def get_video(upload_id: str, request: Request, _: Viewer) -> dict:
    try:
        return _service(request).get(upload_id).public()
    except UploadError as exc:
        raise _http(exc) from None


@router.delete("/videos/{upload_id}", status_code=204)
def delete_video(upload_id: str, request: Request, _: Operator) -> Response:
    """Remove an upload: its record, video, thumbnail and frames (a running job is abandoned)."""
    try:
        _service(request).delete(upload_id)
    except UploadError as exc:
        raise _http(exc) from None
    return Response(status_code=204)


@router.get("/videos/{upload_id}/frames", response_model=UploadFrames)
def list_frames(upload_id: str, request: Request, _: Viewer) -> dict:
    try:
        record = _service(request).get(upload_id)
    except UploadError as exc:
        raise _http(exc) from None
    if record.state != "done":
        detail = f"upload {upload_id} is {record.state}"
        detail += f" ({record.error})" if record.error else ": wait until GET /api/v1/videos/{id} says done"
        raise HTTPException(409, detail)
    return {"id": record.id, "frame_interval_s": record.frame_interval_s,
            "frames": [{"index": f.index, "ts": f.ts, "key": f.key, "url": media_url(f.key)}
                       for f in record.frames]}
