"""``GET /api/v1/media/{key}``: store objects (sub-videos, uploads, frames) with HTTP Range.

A browser ``<video>`` seeks by asking for byte ranges, so single ranges get ``206 Partial
Content`` with ``Content-Range``; an unsatisfiable or malformed range gets ``416`` with
``Content-Range: bytes */size``; a request for several ranges gets the whole object (``200``),
which RFC 9110 allows. Bodies are streamed in chunks from the file, or on an S3 store from one
ranged GET for exactly the bytes asked (no local copy); ``ETag`` and ``Last-Modified`` are the
object's (S3's own, passed through), so browsers and proxies revalidate and ``If-Range`` works. On S3
the size and validators are cached a few seconds (:class:`InfoCache`), so a player's run of ranges
costs one GET each; the GET's ``If-Match`` catches a replaced object.

Keys are checked by :func:`spoton.storage.store.check_key`: ``..``, absolute paths, hidden parts
(temporary ``.part`` files) and unknown keys are all ``404``, so nothing outside the store is
ever served.

Reading needs the viewer role. A ``<video src>`` cannot send an ``Authorization`` header, so
the token may also come as ``?token=`` (as on the WebSocket).
"""
from __future__ import annotations

import mimetypes
import re
import threading
import time
from email.utils import format_datetime
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from apps.live_api.auth import ViewerByHeaderOrQuery
from apps.live_api.deps import get_store
from apps.live_api.errors import error_json
from spoton.storage.store import LocalStore, ObjectInfo, ObjectStore, StoreError, check_key

MEDIA_PREFIX = "/api/v1/media/"
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_CONTENT_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".avi": "video/x-msvideo",
                  ".mkv": "video/x-matroska", ".webm": "video/webm", ".mov": "video/quicktime",
                  ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
                  ".json": "application/json", ".parquet": "application/vnd.apache.parquet"}

router = APIRouter(prefix="/api/v1", tags=["media"])
_CACHE_LOCK = threading.Lock()


def media_url(key: str) -> str:
    """The API path that serves a store key."""
    return MEDIA_PREFIX + check_key(key)


def content_type(key: str) -> str:
    suffix = Path(key).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a single byte range, None for several (serve it all).

    Raises ValueError with the reason when the range is malformed or unsatisfiable.
    """
    if "," in header:
        if not header.strip().lower().startswith("bytes"):
            raise ValueError(f"unsupported range unit in {header!r}: use 'bytes=start-end'")
        return None
    match = _RANGE.match(header)
    if not match or (match[1] == "" and match[2] == ""):
        raise ValueError(f"malformed Range {header!r}: use 'bytes=start-end', 'bytes=start-' or "
                         "'bytes=-suffix_length'")
    first, last = match[1], match[2]
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise ValueError(f"range {header!r} selects no bytes of a {size}-byte object")
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last != "" else size - 1
    if last != "" and int(last) < start:
        raise ValueError(f"range {header!r} ends before it starts")
    if start >= size:
        raise ValueError(f"range {header!r} starts at or past the end of the {size}-byte object")
    return start, end


class InfoCache:
    """Object sizes and validators of a remote (S3) store, kept ``ttl_s`` so a player's run of Range
    requests costs one ranged GET each instead of a HEAD and a GET. Safe to be stale: every read
    sends ``If-Match`` with the cached ETag, and a refused read is retried once with a fresh HEAD.
    A folder store is not cached (its stat is cheap and its reads cannot check the ETag)."""

    def __init__(self, ttl_s: float = 10.0, max_entries: int = 4096):
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[str, tuple[float, ObjectInfo]] = {}
        self._lock = threading.Lock()

    def get(self, store: ObjectStore, key: str, fresh: bool = False) -> tuple[ObjectInfo, bool]:
        """(info, whether it came from the cache)."""
        if isinstance(store, LocalStore):
            return store.info(key), False
        now = time.monotonic()
        with self._lock:
            entry = None if fresh else self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1], True
        info = store.info(key)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now + self.ttl_s, info)
        return info, False

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


def info_cache(request: Request) -> InfoCache:
    state = request.app.state
    with _CACHE_LOCK:
        if getattr(state, "media_info", None) is None:
            state.media_info = InfoCache()
    return state.media_info


def resolve_media(store: ObjectStore, key: str, cache: InfoCache | None = None,
                  fresh: bool = False) -> tuple[ObjectInfo, bool]:
    """The size and validators of a servable key (and whether they came from ``cache``); HTTP 404 for
    anything else (never a path outside)."""
    try:
        check_key(key)
        if any(part.startswith(".") for part in key.split("/")):
            raise StoreError(f"hidden object {key!r}")
        return cache.get(store, key, fresh) if cache is not None else (store.info(key), False)
    except StoreError:
        if cache is not None:
            cache.forget(key)
        raise HTTPException(404, f"no media {key!r} in the store: list the store or check the "
                                 "key (e.g. pets_s2l1/cam1/sub_video_01.mp4)") from None


def _if_range_matches(header: str | None, info: ObjectInfo) -> bool:
    """``If-Range`` absent, or naming this very version (its ETag or its Last-Modified date)."""
    if header is None:
        return True
    header = header.strip()
    return header == info.etag or header == format_datetime(info.last_modified, usegmt=True)


@router.api_route("/media/{key:path}", methods=["GET", "HEAD"])
def get_media(key: str, request: Request, _: ViewerByHeaderOrQuery):
    """Serve one store object, whole or one byte range of it."""
    store, cache = get_store(request), info_cache(request)
    info, cached = resolve_media(store, key, cache)
    while True:
        answer = _answer(store, key, info, request)
        if answer is not None:
            return answer
        if not cached:  # the object changed or vanished between our HEAD and our GET
            raise HTTPException(404, f"media {key!r} changed or vanished while it was read: retry")
        info, cached = resolve_media(store, key, cache, fresh=True)


def _answer(store: ObjectStore, key: str, info: ObjectInfo, request: Request) -> Response | None:
    """The response for ``info``'s version of the object; None when the store no longer has it."""
    size = info.size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=60", "ETag": info.etag,
               "Last-Modified": format_datetime(info.last_modified, usegmt=True)}
    media_type = content_type(key)
    header = request.headers.get("range")
    if header is not None and not _if_range_matches(request.headers.get("if-range"), info):
        header = None  # the client's copy is stale: send the whole current object
    span = None
    if header is not None:
        try:
            span = parse_range(header, size)
        except ValueError as exc:
            return error_json(416, str(exc), headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = span if span is not None else (0, size - 1)
    length = max(end - start + 1, 0)
    headers["Content-Length"] = str(length)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD" or length == 0:
        return Response(status_code=status, headers=headers, media_type=media_type)
    try:  # the read starts here, so a vanished or replaced object is known before any byte is sent
        chunks = store.read_range(key, start, length, etag=info.etag)
    except StoreError:
        return None
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type=media_type)
