"""Core video operations: probe, decode (optionally at a lower rate), encode browser-playable H.264.

Decoding goes through OpenCV's FFmpeg backend; encoding pipes raw BGR frames into the
ffmpeg binary that PyPI ``imageio-ffmpeg`` ships (OpenCV's VideoWriter has no H.264 encoder
here). Nothing in this module trusts a file name: the container and codec are learned by
opening the content, and every failure is a :class:`~spoton.errors.VideoError` whose
message names the problem and the fix.

Truncated files: :func:`probe` succeeds when the header survives and the first frame decodes
(it then reports the frame count the header declares), and fails otherwise. :func:`iter_frames`
yields every frame it can decode and then stops, logging a warning when it stopped before the
declared frame count (a few frames just before the cut may be lost: OpenCV does not flush the
decoder there); it never yields a frame whose shape differs from the first one, and raises
VideoError when not even the first frame decodes.
"""
from __future__ import annotations

import logging
import math
import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from spoton.errors import VideoError

log = logging.getLogger(__name__)

MAX_PLAUSIBLE_FPS = 1000.0  # above this OpenCV is reporting a container time base, not a rate

# FourCC (lower-cased) -> FFmpeg-style codec name. OpenCV reports the container's tag
# ('avc1', 'MP43', ...) or, when the container has none (MKV), a name it derived ('h264').
_FOURCC_NAMES = {
    **dict.fromkeys(["h264", "avc1", "avc3", "x264", "davc"], "h264"),
    **dict.fromkeys(["hevc", "hev1", "hvc1", "h265", "x265"], "hevc"),
    **dict.fromkeys(["mjpg", "mjpa", "jpeg", "avrn", "dmb1"], "mjpeg"),
    **dict.fromkeys(["fmp4", "mp4v", "xvid", "divx", "dx50", "dx40"], "mpeg4"),
    **dict.fromkeys(["mp43", "div3", "div4"], "msmpeg4v3"),
    **dict.fromkeys(["mp42", "div2"], "msmpeg4v2"),
    "mpg4": "msmpeg4v1",
    **dict.fromkeys(["vp80", "vp08"], "vp8"),
    **dict.fromkeys(["vp90", "vp09"], "vp9"),
    **dict.fromkeys(["av01", "av1 "], "av1"),
    **dict.fromkeys(["mpg1", "pim1"], "mpeg1video"),
    **dict.fromkeys(["mpg2", "mp2v", "mpeg"], "mpeg2video"),
}


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learned by opening the content (the file name is never trusted)."""

    path: str
    codec: str  # lower-case FFmpeg-style name derived from the FourCC: "h264", "mjpeg", ...
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float  # frame_count / fps
    size_bytes: int


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame; ``ts`` comes from the index, so it is exact and deterministic."""

    index: int  # source frame index, 0-based
    ts: float  # seconds from the video start = index / fps
    image: np.ndarray = field(repr=False, compare=False)  # BGR uint8, H x W x 3


def codec_name(fourcc: int | float) -> str:
    """Map OpenCV's CAP_PROP_FOURCC value to a lower-case codec name ("unknown" for 0)."""
    value = int(fourcc)
    if value <= 0:
        return "unknown"
    tag = value.to_bytes(4, "little").decode("latin-1")
    name = _FOURCC_NAMES.get(tag.lower())
    if name is not None:
        return name
    cleaned = "".join(ch for ch in tag if ch.isprintable() and not ch.isspace()).lower()
    return cleaned or "unknown"


def _is_url(path) -> bool:
    return isinstance(path, str) and path.startswith(("http://", "https://"))


def _size_note(path) -> str:
    return "" if _is_url(path) else f" ({path.stat().st_size} bytes)"


def _check_file(path) -> Path | str:
    """Fail early, with the fix, on the problems OpenCV would only report as 'cannot open'.

    An http(s) URL (a presigned S3 URL) is passed through: FFmpeg reads it with ranged requests."""
    if _is_url(path):
        return path
    path = Path(path)
    if not path.exists():
        raise VideoError(f"no such file: {path} – check the path")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video file – give the path of the video itself")
    if path.stat().st_size == 0:
        raise VideoError(
            f"empty file (0 bytes): {path} – the copy or upload was probably interrupted; copy it again")
    return path


def _open(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise VideoError(
            f"not a readable video: {path}{_size_note(path)} – FFmpeg found no video "
            "stream in it; it is not a video, or it is truncated so badly its header is lost "
            "(an MP4 cut before its index). Give an MP4/AVI/MKV video, or re-export it")
    return capture


def _native_fps(capture: cv2.VideoCapture, path: Path) -> float:
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    if not math.isfinite(fps) or fps <= 0 or fps > MAX_PLAUSIBLE_FPS:
        raise VideoError(
            f"unknown frame rate for {path} (the container reports {fps!r}) – re-mux it with a "
            f"constant frame rate, e.g. `ffmpeg -i {path.name} -r 25 fixed.mp4`")
    return fps


def _declared_frame_count(capture: cv2.VideoCapture) -> int:
    """The container's frame count, or 0 when it has none (OpenCV reports <= 0 or junk)."""
    count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if not math.isfinite(count) or count <= 0 or count > 2**40:
        return 0
    return int(round(count))


def _count_by_decoding(path: Path) -> int:
    """Count frames by grabbing them all: slow but right where the container lies."""
    capture = _open(path)
    try:
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def probe(path, *, exact_count: bool = False) -> VideoInfo:
    """Open a video (a file, or an http(s) URL) and report codec, size, rate and length; verifies the
    first frame decodes. ``size_bytes`` is 0 for a URL.

    ``frame_count`` is the container's count when it has one (cheap), else frames are
    counted by decoding. ``exact_count=True`` always counts by decoding (slow, exact even
    for truncated files).
    """
    path = _check_file(path)
    capture = _open(path)
    try:
        codec = codec_name(capture.get(cv2.CAP_PROP_FOURCC))
        fps = _native_fps(capture, path)
        declared = _declared_frame_count(capture)
        ok, first = capture.read()
    finally:
        capture.release()
    if not ok or first is None or first.ndim != 3 or first.size == 0:
        raise VideoError(
            f"no decodable frames in {path} (codec {codec}) – the file is truncated or corrupt, "
            "or the codec is unsupported; re-export it as H.264 MP4")
    frame_count = _count_by_decoding(path) if exact_count or declared <= 0 else declared
    if frame_count <= 0:
        raise VideoError(f"{path} has zero frames – re-export it")
    height, width = first.shape[:2]
    return VideoInfo(path=str(path), codec=codec, width=int(width), height=int(height), fps=fps,
                     frame_count=int(frame_count), duration_s=frame_count / fps,
                     size_bytes=0 if _is_url(path) else path.stat().st_size)


def _kept_index(k: int, ratio: float) -> int:
    """Source index nearest the k-th target time (k / target_fps) when ratio = native / target."""
    return math.floor(k * ratio + 0.5)


def _check_rates(native_fps: float, target_fps: float | None) -> None:
    if not math.isfinite(native_fps) or native_fps <= 0:
        raise ValueError(f"native_fps must be a positive number, got {native_fps!r}")
    if target_fps is not None and (not math.isfinite(target_fps) or target_fps <= 0):
        raise ValueError(f"fps must be a positive number or None (every frame), got {target_fps!r}")


def sample_indices(frame_count: int, native_fps: float, target_fps: float | None) -> np.ndarray:
    """The source indices :func:`iter_frames` keeps: the frame nearest each time k / target_fps.

    Strictly increasing (no duplicates), anchored at frame 0 so any slice of a video
    samples the same frames as the whole. ``target_fps`` None or >= native keeps all.
    """
    _check_rates(native_fps, target_fps)
    frame_count = max(int(frame_count), 0)
    if target_fps is None or target_fps >= native_fps:
        return np.arange(frame_count, dtype=np.int64)
    ratio = native_fps / target_fps
    k = np.arange(int(math.ceil(frame_count / ratio)) + 2, dtype=np.float64)
    # the same float64 expression as _kept_index, so both agree bit for bit
    indices = np.floor(k * ratio + 0.5).astype(np.int64)
    return indices[indices < frame_count]


def iter_frames(path, *, fps: float | None = None, start: int = 0,
                stop: int | None = None) -> Iterator[VideoFrame]:
    """Decode frames ``[start, stop)`` in order, every frame or about ``fps`` per second.

    Sampling keeps exactly :func:`sample_indices`' frames; skipped frames are only
    ``grab()``-ed (no colour conversion), kept ones ``retrieve()``-d. ``start`` is reached by
    seeking. A truncated video yields its readable frames and then stops (with a logged
    warning); a video whose first frame does not decode raises VideoError.
    """
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"need 0 <= start <= stop, got start={start}, stop={stop}")
    path = _check_file(path)
    capture = _open(path)  # opened here, not on first next(), so bad input fails at the call
    try:
        native = _native_fps(capture, path)
        _check_rates(native, fps)
    except BaseException:
        capture.release()
        raise
    return _decode(capture, path, native, fps, int(start), stop)


def _decode(capture: cv2.VideoCapture, path: Path, native: float, fps: float | None,
            start: int, stop: int | None) -> Iterator[VideoFrame]:
    try:
        declared = _declared_frame_count(capture)
        ratio = None if fps is None or fps >= native else native / fps
        k = 0
        if ratio is not None:  # first target whose frame is at or after start
            k = max(int(math.floor((start - 0.5) / ratio)) - 1, 0)
            while _kept_index(k, ratio) < start:
                k += 1
        index = 0
        if start > 0:
            if capture.set(cv2.CAP_PROP_POS_FRAMES, start) and \
                    int(round(capture.get(cv2.CAP_PROP_POS_FRAMES))) == start:
                index = start
            else:  # no seeking in this container: walk there (exact, slower)
                capture.release()
                capture = _open(path)
        shape = None
        while stop is None or index < stop:
            if not capture.grab():
                break
            if index >= start and (ratio is None or index == _kept_index(k, ratio)):
                ok, image = capture.retrieve()
                if not ok or image is None:
                    break
                if shape is None:
                    shape = image.shape
                if image.shape != shape or image.ndim != 3 or image.shape[2] != 3 \
                        or image.dtype != np.uint8:
                    raise VideoError(
                        f"frame {index} of {path} is {image.shape} {image.dtype}, unlike the "
                        f"first frame {shape}: the stream changes size mid-way or is corrupt; "
                        "re-export it")
                yield VideoFrame(index=index, ts=index / native, image=image)
                if ratio is not None:
                    k += 1
            index += 1
        if index == 0 and start == 0 and (stop is None or stop > 0):
            raise VideoError(
                f"no decodable frames in {path} – the file is truncated or corrupt, or the codec "
                "is unsupported; re-export it as H.264 MP4")
        expected_end = declared if stop is None else min(stop, declared)
        if declared and index < expected_end:
            log.warning("%s ended after %d of the %d frames its header declares: truncated?",
                        path, index, declared)
    finally:
        capture.release()


def _ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise VideoError("H.264 encoding needs the ffmpeg binary of imageio-ffmpeg: "
                         "pip install imageio-ffmpeg") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def _stderr_tail(handle, limit: int = 2000) -> str:
    try:
        handle.seek(0)
        text = handle.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return "(ffmpeg's stderr is unavailable)"
    return text[-limit:] or "(ffmpeg printed nothing)"


class H264Writer:
    """Writes an MP4 browsers can play (H.264 High, yuv420p, moov atom first) frame by frame.

    Raw BGR frames are piped into ffmpeg (libx264). ffmpeg writes a hidden temp file next
    to ``path`` that replaces ``path`` only when encoding succeeded, so a failed or aborted
    run never leaves a partial video where a good one is expected. yuv420p needs even
    sizes: an odd width or height is padded by one black pixel column/row.
    Use as a context manager; an exception inside the ``with`` aborts the file.
    """

    def __init__(self, path, fps: float, size: tuple[int, int], crf: int = 23,
                 preset: str = "veryfast"):
        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0:
            raise ValueError(f"size must be a positive (width, height), got {size!r}")
        if not 0 <= int(crf) <= 51:
            raise ValueError(f"crf must be within 0..51 (lower = better quality), got {crf!r}")
        self.path = Path(path)
        self.fps = fps
        self.size = (width, height)
        self.frames_written = 0
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        rate = Fraction(fps).limit_denominator(1001)
        command = [
            _ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-video_size", f"{width}x{height}",
            "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0",
            "-an", "-c:v", "libx264", "-preset", str(preset), "-crf", str(int(crf)),
            "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4",
        ]
        if width % 2 or height % 2:
            command += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        command.append(str(self._tmp))
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, stderr=self._stderr)
        except OSError as exc:
            self._stderr.close()
            self._closed = True
            raise VideoError(f"could not start ffmpeg ({command[0]}): {exc} – reinstall "
                             "imageio-ffmpeg") from exc

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, image: np.ndarray) -> None:
        """Append one BGR uint8 frame of exactly the writer's size."""
        if self._closed:
            raise VideoError(f"{self.path}: write() after close() – open a new H264Writer")
        image = np.asarray(image)
        width, height = self.size
        if image.shape != (height, width, 3):
            got = (f"{image.shape[1]}x{image.shape[0]}" if image.ndim >= 2 else str(image.shape))
            channels = f" with {image.shape[2]} channels" if image.ndim == 3 else (
                " (grayscale)" if image.ndim == 2 else "")
            raise ValueError(f"frame is {got}{channels} but the writer of {self.path.name} expects "
                             f"{width}x{height} BGR frames: resize or convert the frame first")
        if image.dtype != np.uint8:
            raise ValueError(f"frame dtype is {image.dtype}, expected uint8 BGR: convert it first "
                             "(e.g. np.clip(x, 0, 255).astype(np.uint8))")
        try:
            self._process.stdin.write(memoryview(np.ascontiguousarray(image)).cast("B"))
        except (BrokenPipeError, OSError, ValueError):
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass  # abort() below kills it
            tail = _stderr_tail(self._stderr)
            self.abort()
            raise VideoError(f"ffmpeg stopped while encoding {self.path}: {tail}") from None
        self.frames_written += 1

    def close(self) -> Path:
        """Finish encoding and move the file into place; raises VideoError if ffmpeg failed."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            self._process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        returncode = self._process.wait()
        tail = _stderr_tail(self._stderr)
        self._stderr.close()
        if returncode != 0 or self.frames_written == 0:
            self._tmp.unlink(missing_ok=True)
            if self.frames_written == 0:
                raise VideoError(f"no frames were written to {self.path}: nothing to encode")
            raise VideoError(f"ffmpeg failed (exit {returncode}) encoding {self.path}: {tail}")
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the temp file; ``path`` is left untouched."""
        if self._closed:
            return
        self._closed = True
        try:
            self._process.kill()
            self._process.wait()
        finally:
            for stream in (self._process.stdin, self._stderr):
                try:
                    stream.close()
                except (BrokenPipeError, OSError, ValueError):
                    pass
            self._tmp.unlink(missing_ok=True)

    def __del__(self) -> None:  # a forgotten writer must not leave ffmpeg or a temp file behind
        try:
            if not self._closed:
                self.abort()
        except Exception:
            pass


def encode_h264(frames: Iterable[np.ndarray], path, fps: float, **writer_options) -> Path:
    """Encode BGR frames (all of the first frame's size) into a browser-playable MP4."""
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise VideoError(f"no frames to encode into {path}: give at least one frame")
    first = np.asarray(first)
    if first.ndim != 3:
        raise ValueError(f"frames must be H x W x 3 BGR arrays, got shape {first.shape}")
    with H264Writer(path, fps, (first.shape[1], first.shape[0]), **writer_options) as writer:
        writer.write(first)
        for image in iterator:
            writer.write(image)
    return Path(path)
