"""Live frame sources with latest-frame semantics: video files, store objects, RTSP and HTTP MJPEG.

A live session must never fall behind its cameras, so every source runs one reader thread that
decodes into a slot that holds one frame: :meth:`LiveSource.latest` hands out the newest frame not
yet taken, and a frame that is replaced before anyone took it is dropped and counted in
``dropped``. Nothing queues up.

- ``file`` (a path) / ``store`` and ``upload`` (an object-store key, resolved through
  :mod:`spoton.storage.store`; an upload id is turned into its key by the API before it gets here):
  decoded with :func:`spoton.video.iter_frames` (an S3 store's object through a presigned URL,
  signed anew for each pass, that FFmpeg reads with ranged GETs: no local copy). With ``realtime=True`` frames are released at
  the video's native rate, like a camera; at the end the video **loops** (a live session keeps
  running until it is stopped; ``loops`` counts the restarts, frame indices start again at 0).
  ``loop=False`` ends instead: the state becomes ``stopped`` after the last frame was taken.
  With ``realtime=False`` nothing is paced or dropped: the reader waits until the previous frame
  was taken (deterministic, for tests and benchmarks).
- ``webrtc``: frames pushed from outside (the live API's WHIP endpoint: a browser's webcam) with
  :meth:`LiveSource.publish`; the reader only waits for the stop. ``uri`` is a free label.
- ``rtsp`` / ``http`` (MJPEG over HTTP, ``multipart/x-mixed-replace``): OpenCV's FFmpeg backend.
  When the stream drops (read error or timeout) the state goes ``reconnecting`` and the reader
  reopens it with exponential backoff (``backoff_initial_s`` doubling up to ``backoff_max_s``),
  back to ``running`` with the first new frame. A stream that never opened fails after
  ``open_attempts`` tries (a wrong URL must not look like a camera that is rebooting).
  Frame indices count frames read since start and keep growing across reconnects;
  ``ts`` is seconds since :meth:`LiveSource.start` on the monotonic clock.

States: ``starting`` -> ``running`` <-> ``reconnecting``; ``stopped`` (by :meth:`stop` or the end
of a non-looping file); ``failed`` with ``error`` naming the problem and the fix.

A URI's password never leaves the spec: errors, logs and ``SourceSpec.shown_uri`` carry it
redacted (:func:`spoton.redact.redact`). A :class:`SourceAllowList` given to :func:`open_source`
limits ``file`` sources to media roots and streams to listed hosts or networks.
"""
from __future__ import annotations

import contextvars
import ipaddress
import logging
import math
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, get_args
from urllib.parse import urlsplit

import cv2

from spoton.errors import SpotOnError, VideoError
from spoton.redact import hide_path, redact
from spoton.storage.store import ObjectStore, StoreError
from spoton.video import VideoFrame, VideoInfo, iter_frames, probe

log = logging.getLogger(__name__)

SourceKind = Literal["file", "store", "upload", "rtsp", "http", "webrtc"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
_URL_SCHEMES = {"rtsp": ("rtsp://", "rtsps://"), "http": ("http://", "https://")}


class SourceError(SpotOnError):
    """A source spec is malformed or its video cannot be opened."""


@dataclass(frozen=True)
class SourceSpec:
    """Where one camera's frames come from: a file path, a store key, or a stream URL."""

    kind: SourceKind
    uri: str

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise SourceError(f"unknown source kind {self.kind!r}: use one of {list(SOURCE_KINDS)}")
        if not isinstance(self.uri, str) or not self.uri.strip():
            raise SourceError(f"{self.kind} source needs a non-empty uri (a path, store key or URL)")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in self.uri):
            raise SourceError(f"{self.kind} source uri {self.shown_uri!r} contains a control character "
                              "(NUL, newline, ...): remove it")
        schemes = _URL_SCHEMES.get(self.kind)
        if schemes and not self.uri.lower().startswith(schemes):
            raise SourceError(f"{self.kind} source uri {self.shown_uri!r} must start with "
                              f"{' or '.join(schemes)}")

    @property
    def is_stream(self) -> bool:
        return self.kind in _URL_SCHEMES

    @property
    def shown_uri(self) -> str:
        """The URI as responses and logs show it: any password replaced by ``***``."""
        return redact(self.uri)


@dataclass(frozen=True)
class SourceAllowList:
    """What sources may open: ``file`` paths under ``media_roots``, streams on ``hosts``.

    ``hosts`` holds host names (matched exactly, case-insensitive) and IP networks in CIDR form
    (``10.0.0.0/8``, a lone address too); a name not listed is resolved and every address it
    resolves to must be in a listed network. ``None`` allows any file or any host.
    """

    media_roots: tuple[Path, ...] | None = None
    hosts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for entry in self.hosts or ():
            if "/" in entry or _is_ip(entry):
                ipaddress.ip_network(entry, strict=False)  # ValueError names a malformed entry

    def check(self, spec: SourceSpec) -> None:
        """Raise SourceError when ``spec`` is outside the allow-list (store keys are always allowed)."""
        if spec.kind == "file" and self.media_roots is not None:
            path = Path(spec.uri).resolve()
            if not any(path.is_relative_to(Path(root).resolve()) for root in self.media_roots):
                raise SourceError(f"file source {spec.shown_uri!r} is outside the server's media roots: "
                                  "upload the video, use a store key, or ask the operator to add its "
                                  "folder to the media roots")
        if spec.is_stream and self.hosts is not None and not self._host_allowed(urlsplit(spec.uri).hostname):
            raise SourceError(f"{spec.kind} source {spec.shown_uri!r}: its host is not on the server's "
                              "source host allow-list: ask the operator to add it")

    def _host_allowed(self, host: str | None) -> bool:
        if not host:
            return False
        names = {entry.lower() for entry in self.hosts if "/" not in entry and not _is_ip(entry)}
        if host.lower() in names:
            return True
        networks = [ipaddress.ip_network(e, strict=False) for e in self.hosts if "/" in e or _is_ip(e)]
        if not networks:
            return False
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except (OSError, UnicodeError):
            return False
        return bool(addresses) and all(
            any(ipaddress.ip_address(a.split("%")[0]) in net for net in networks) for a in addresses)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a network source retries: exponential backoff, and how long one read may block."""

    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    open_attempts: int = 3  # tries before a source that never opened is ``failed``
    timeout_s: float = 5.0  # FFmpeg open and read timeout

    def delay(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (1-based)."""
        return min(self.backoff_initial_s * 2 ** (attempt - 1), self.backoff_max_s)


class _RateMeter:
    """Frames per second over the last few seconds (what the reader really delivers)."""

    def __init__(self, window_s: float = 3.0):
        self.window_s = window_s
        self.times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self.times.append(now)
        while self.times and now - self.times[0] > self.window_s:
            self.times.popleft()

    def rate(self) -> float:
        if len(self.times) < 2:
            return 0.0
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


class LiveSource:
    """A reader thread filling a one-frame slot; see the module docstring for the semantics."""

    def __init__(self, spec: SourceSpec, reader: Callable[["LiveSource"], None],
                 nominal_fps: float = 0.0, frame_size: tuple[int, int] | None = None):
        self.spec = spec
        self.state: str = "starting"
        self.error: str | None = None
        self.dropped = 0
        self.frames_read = 0
        self.loops = 0
        self.reconnects = 0
        self.nominal_fps = nominal_fps  # the container's / stream's declared rate (0 if unknown)
        self.frame_size = frame_size  # (w, h) once known
        self.last_frame_monotonic: float | None = None
        self._reader = reader
        self._meter = _RateMeter()
        self._lock = threading.Condition()
        self._slot: VideoFrame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_monotonic: float | None = None

    def __repr__(self) -> str:
        return (f"LiveSource({self.spec.kind}:{self.spec.shown_uri!r}, state={self.state}, "
                f"read={self.frames_read}, dropped={self.dropped})")

    @property
    def fps(self) -> float:
        """Frames per second actually read over the last seconds (nominal rate before that)."""
        with self._lock:
            measured = self._meter.rate()
        return measured if measured > 0 else self.nominal_fps

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> "LiveSource":
        if self._thread is not None:
            raise RuntimeError(f"{self!r} was already started: open a new source to restart")
        self.started_monotonic = time.monotonic()
        # the reader runs in the starter's context (e.g. the log context naming its session)
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run,),
                                        name=f"source-{self.spec.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the reader to end and wait for it (a blocked network read ends at its timeout)."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        if self.state != "failed":
            self.state = "stopped"

    def latest(self) -> VideoFrame | None:
        """The newest frame not yet taken (None if there is none); takes it."""
        with self._lock:
            frame, self._slot = self._slot, None
            self._lock.notify_all()
            return frame

    def wait_latest(self, timeout_s: float) -> VideoFrame | None:
        """Like :meth:`latest` but waits up to ``timeout_s`` for a frame."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._slot is None and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)
            frame, self._slot = self._slot, None
            self._lock.notify_all()
            return frame

    # --- used by the reader thread -------------------------------------------------------
    def publish(self, frame: VideoFrame, *, wait_taken: bool = False) -> None:
        """Put a frame in the slot, dropping (and counting) an untaken one, or wait for it."""
        now = time.monotonic()
        with self._lock:
            if wait_taken:
                while self._slot is not None and not self._stop.is_set():
                    self._lock.wait(0.5)
            if self._slot is not None:
                self.dropped += 1
            self._slot = frame
            self.frames_read += 1
            self.last_frame_monotonic = now
            self._meter.tick(now)
            if self.frame_size is None:
                self.frame_size = (int(frame.image.shape[1]), int(frame.image.shape[0]))
            self._lock.notify_all()
        if self.state in ("starting", "reconnecting"):
            self.state = "running"

    def wait_until_taken(self) -> None:
        """Block until the last published frame was taken (or the source stops)."""
        with self._lock:
            while self._slot is not None and not self._stop.is_set():
                self._lock.wait(0.5)

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; returns False when the source is stopping."""
        return not self._stop.wait(max(seconds, 0.0))

    def _run(self) -> None:
        try:
            self._reader(self)
        except SpotOnError as exc:  # expected failures (bad URL, corrupt video): the reason only
            self.error = redact(str(exc))
            log.warning("source %s failed: %s", self.spec.shown_uri, self.error)
            self.state = "failed"
            return
        except Exception as exc:  # anything else ends the source too, with its traceback logged
            log.exception("source %s failed", self.spec.shown_uri)
            self.error = redact(f"{type(exc).__name__}: {exc}")
            self.state = "failed"
            return
        if self.state != "failed":
            self.state = "stopped"


def _video_locator(spec: SourceSpec, store: ObjectStore | None) -> Callable[[], str | Path]:
    """What the decoder opens for a file or store source, asked anew for each pass over the video: a
    path, or on S3 a fresh presigned URL (FFmpeg reads it with ranged GETs; no local copy). A ``file``
    source is always a Path, so an ``http://`` "file" is a missing file, never a fetched URL."""
    if spec.kind == "file":
        return lambda: Path(spec.uri)
    if store is None:
        raise SourceError(f"{spec.kind} source {spec.uri!r} is a store key but no store was given: "
                          "pass store=LocalStore(...) or S3Store(...)")

    def locate() -> str:
        try:
            return store.video_source(spec.uri)
        except StoreError as exc:
            raise SourceError(f"{spec.kind} source: {exc} – check the key (list the store with "
                              "`spoton`'s store or upload it first)") from None
    return locate


def _file_reader(locate: Callable[[], str | Path], name: str, info: VideoInfo, realtime: bool, loop: bool):
    """Reads the video ``locate()`` names; its errors call it ``name`` (what the client gave), never the
    server path or URL."""
    period = 1.0 / info.fps
    location = ""

    def play(source: LiveSource) -> None:
        nonlocal location
        released = 0  # frames released since start, across loops: the realtime clock
        while not source.stopping:
            produced = 0
            location = locate()
            for frame in iter_frames(location):
                if source.stopping:
                    return
                if realtime:
                    due = source.started_monotonic + released * period
                    if not source.sleep(due - time.monotonic()):
                        return
                source.publish(frame, wait_taken=not realtime)
                released += 1
                produced += 1
            if produced == 0:
                raise VideoError(f"{name}: no frames decoded – the video is empty or corrupt")
            if not loop:
                source.wait_until_taken()
                return
            source.loops += 1

    def read(source: LiveSource) -> None:
        try:
            play(source)
        except (VideoError, SourceError) as exc:
            raise type(exc)(hide_path(str(exc), location, name) if location else str(exc)) from None

    return read


def _capture_params(policy: ReconnectPolicy) -> list[int]:
    timeout_ms = int(policy.timeout_s * 1000)
    return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]


def _stream_reader(url: str, policy: ReconnectPolicy):
    shown = redact(url)

    def read(source: LiveSource) -> None:
        failures = 0  # consecutive failed opens / reads since the last good frame
        ever_opened = False
        index = 0
        while not source.stopping:
            capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, _capture_params(policy))
            if capture.isOpened():
                ever_opened = True
                fps = float(capture.get(cv2.CAP_PROP_FPS))
                if math.isfinite(fps) and 0 < fps < 1000:
                    source.nominal_fps = fps
                try:
                    while not source.stopping:
                        ok, image = capture.read()
                        if not ok or image is None:
                            break
                        now = time.monotonic()
                        source.publish(VideoFrame(index=index, ts=now - source.started_monotonic,
                                                  image=image))
                        index += 1
                        failures = 0
                finally:
                    capture.release()
                if source.stopping:
                    return
                source.error = f"stream {shown} ended or stalled for {policy.timeout_s:.0f} s"
            else:
                capture.release()
                source.error = f"could not open {shown}"
            failures += 1
            if not ever_opened and failures >= policy.open_attempts:
                raise SourceError(
                    f"could not open {source.spec.kind} stream {shown} after {failures} tries – check "
                    "the URL, that the camera/server is up and reachable, and the codec "
                    "(RTSP: H.264/MJPEG; HTTP: multipart/x-mixed-replace JPEG)")
            source.state = "reconnecting"
            source.reconnects += 1
            delay = policy.delay(failures)
            log.warning("%s: %s; reconnecting in %.1f s", shown, source.error, delay)
            if not source.sleep(delay):
                return

    return read


def _wait_for_stop(source: LiveSource) -> None:
    """The reader of a pushed source: frames come from :meth:`LiveSource.publish` callers."""
    while source.sleep(1.0):
        pass


def open_source(spec: SourceSpec, *, store: ObjectStore | None = None, realtime: bool = True,
                loop: bool = True, policy: ReconnectPolicy = ReconnectPolicy(),
                allow: SourceAllowList | None = None) -> LiveSource:
    """Build a (not yet started) :class:`LiveSource`; call ``start()``.

    Files and store objects are probed here, so a missing or non-video input raises
    :class:`SourceError` at once; streams are opened by the reader thread (state ``starting``).
    ``allow`` (None: anything) refuses files and hosts outside it with a SourceError. Errors name
    the source by its uri (a store key, the given path), never by the server path it resolved to.
    """
    if allow is not None:
        allow.check(spec)
    if spec.is_stream:
        return LiveSource(spec, _stream_reader(spec.uri, policy))
    if spec.kind == "webrtc":
        return LiveSource(spec, _wait_for_stop)
    locate = _video_locator(spec, store)
    location = locate()
    try:
        info = probe(location)
    except VideoError as exc:
        raise SourceError(f"{spec.kind} source {spec.shown_uri!r}: {hide_path(str(exc), location, 'the video')}") from None
    return LiveSource(spec, _file_reader(locate, spec.shown_uri, info, realtime, loop), nominal_fps=info.fps,
                      frame_size=(info.width, info.height))
