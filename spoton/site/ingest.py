"""A camera from a video file: check it, transcode it only when needed, cut it, register it.

The one path that ``spoton env add-camera --video`` and the live API's site upload jobs share.
Sub-videos go to ``{env}/{camera}/sub_video_NN.mp4`` (where the sensor finds them), one per
``segment_length_s`` of the site.

Two ways to cut, chosen by :func:`plan_cut` and recorded in the result (``path``):

- ``copy``: the video is already what the pipeline takes (H.264, yuv420p, even size, the rate
  the camera gets) and has a closed-GOP keyframe within ``max_cut_shift_s`` of every segment
  boundary. ffmpeg's segment muxer cuts it there with stream copy: no decoding, no re-encoding,
  the frames bit-exact. Segments are then up to ``max_cut_shift_s`` longer or shorter than the
  site's length; together they hold every frame of the video, in order (the pipeline places each
  sub-video on the environment clock by the frames of the ones before it, so uneven lengths are fine).
- ``transcode``: anything else (MJPEG, VP8, MPEG-4, H.264 with keyframes too far apart, a rate
  override) is decoded and re-encoded to H.264 segments of exactly the segment length.

Progress goes to a callback ``progress(stage, fraction)`` with the stage (``checking``,
``transcoding`` or ``cutting``, ``registering``) and the whole job's fraction done (0..1). The
callback may raise to cancel until ``registering`` starts: what was stored is removed and the site
is left unchanged (a raise at ``registering`` 1.0 comes after the camera was saved).
"""
from __future__ import annotations

import logging
import math
import subprocess
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from spoton.environment import sub_video_key
from spoton.errors import VideoError
from spoton.redact import hide_path
from spoton.site.model import Camera, CameraSource
from spoton.site.onboarding import DEFAULT_SEGMENT_LENGTH_S, OnboardingError, check_new_camera, load_site
from spoton.site.storage import list_versions, load_environment, save_environment
from spoton.storage.store import ObjectStore
from spoton.video import H264Writer, VideoInfo, _ffmpeg_exe, iter_frames, probe

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
DEFAULT_MAX_CUT_SHIFT_S = 1.0
# share of the job's progress each stage ends at
_CHECKED, _CUT = 0.05, 0.95
_REGISTERING = threading.Lock()


@dataclass(frozen=True)
class StreamFacts:
    """What the container says of the video stream, read by demuxing only (no decoding)."""

    codec: str
    pix_fmt: str | None
    width: int
    height: int
    fps: float | None
    keyframes: tuple[int, ...]  # packet indices (decode order) where a closed GOP starts
    packets: int


@dataclass(frozen=True)
class CutPlan:
    path: str  # "copy" or "transcode"
    why: str  # the reason, for the job record and the log
    info: VideoInfo
    fps: float
    segment_frames: int
    cuts: tuple[int, ...] = ()  # copy: the frame index each segment after the first starts at


@dataclass(frozen=True)
class AddedCamera:
    version: int
    keys: tuple[str, ...]
    path: str
    why: str
    frame_counts: tuple[int, ...]


def stream_facts(path: Path | str) -> StreamFacts | None:
    """Codec, pixel format, rate and closed-GOP keyframes of the first video stream; None when
    PyAV cannot demux it (then the video is transcoded)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            pts, keys = [], []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's flush packet
                if packet.pts is None:
                    return None  # no presentation times: the cuts could not be checked
                if packet.is_keyframe:
                    keys.append(len(pts))
                pts.append(packet.pts)
            context = stream.codec_context
            facts = (context.name, context.format.name if context.format else None, context.width, context.height)
    except (av.FFmpegError, IndexError, ValueError, OSError):
        return None
    # a keyframe starts a closed GOP when every packet before it shows before it and none after
    closed = []
    earlier_max = -math.inf
    later_min = [math.inf] * (len(pts) + 1)
    for i in range(len(pts) - 1, -1, -1):
        later_min[i] = min(pts[i], later_min[i + 1])
    keyset = set(keys)
    for i, value in enumerate(pts):
        if i in keyset and earlier_max < value <= later_min[i]:
            closed.append(i)
        earlier_max = max(earlier_max, value)
    return StreamFacts(*facts, fps=float(rate) if rate else None, keyframes=tuple(closed), packets=len(pts))


def _cuts(keyframes: tuple[int, ...], frame_count: int, segment_frames: int, tolerance: int) -> tuple[int, ...] | None:
    """The keyframe nearest each segment boundary, or None when one has none within ``tolerance``."""
    cuts: list[int] = []
    for boundary in range(segment_frames, frame_count, segment_frames):
        near = [k for k in keyframes if abs(k - boundary) <= tolerance and k > (cuts[-1] if cuts else 0)]
        if not near:
            return None
        cuts.append(min(near, key=lambda k: (abs(k - boundary), k)))
    return tuple(cuts)


def plan_cut(video: Path | str, info: VideoInfo, fps: float | None, segment_length_s: float,
             max_cut_shift_s: float = DEFAULT_MAX_CUT_SHIFT_S) -> CutPlan:
    """Copy when the stream is already what the pipeline takes and its keyframes allow cuts within
    ``max_cut_shift_s`` of the segment boundaries; otherwise transcode. ``why`` says which rule decided."""
    rate = float(fps or info.fps)
    segment_frames = max(1, round(segment_length_s * rate))

    def transcode(why: str) -> CutPlan:
        return CutPlan("transcode", why, info, rate, segment_frames)

    if fps is not None and abs(fps - info.fps) > 1e-3:
        return transcode(f"the frame rate is overridden ({info.fps:g} -> {fps:g} fps)")
    if info.codec != "h264":
        return transcode(f"the video is {info.codec}, not H.264")
    facts = stream_facts(video)
    if facts is None:
        return transcode("its packets could not be read without decoding")
    if facts.pix_fmt not in ("yuv420p", "yuvj420p"):  # yuvj420p: the same, full range (from JPEG sources)
        return transcode(f"its pixel format is {facts.pix_fmt}, not yuv420p")
    if facts.width % 2 or facts.height % 2 or (facts.width, facts.height) != (info.width, info.height):
        return transcode(f"its size {facts.width}x{facts.height} is odd or differs from the decoded frames")
    if facts.fps is None or abs(facts.fps - info.fps) > 1e-3 or facts.packets != info.frame_count:
        return transcode("its frame rate or frame count is not constant and declared")
    cuts = _cuts(facts.keyframes, facts.packets, segment_frames, math.floor(max_cut_shift_s * rate))
    if cuts is None:
        return transcode(f"no keyframe within {max_cut_shift_s:g} s of every {segment_length_s:g} s boundary")
    return CutPlan("copy", f"H.264 yuv420p with keyframes within {max_cut_shift_s:g} s of every boundary",
                   info, rate, segment_frames, cuts)


def discard_orphan_videos(store: ObjectStore, environment: str, camera: str) -> list[str]:
    """Delete ``{env}/{camera}/`` videos that no version of the site references (what a job that
    was killed mid-way left); the videos of a deleted camera stay (earlier versions use them)."""
    if any(camera in load_environment(store, environment, v).camera_names for v in list_versions(store, environment)):
        return []
    keys = [k for k in store.list_keys(f"{environment}/{camera}/") if k.endswith(".mp4")]
    for key in keys:
        store.delete(key)
    return keys


def add_video_camera(store: ObjectStore, environment: str, camera: str, video: Path | str, fps: float | None = None,
                     progress: Progress | None = None, max_duration_s: float | None = None,
                     max_cut_shift_s: float = DEFAULT_MAX_CUT_SHIFT_S, shown_as: str | None = None) -> AddedCamera:
    """Check ``video`` (a file, or a URL such as an S3 store's presigned one), cut it into sub-videos of
    the site's segment length (stream copy when it allows, else H.264 transcoding), store them and save
    the site with the new camera.
    Messages name the video ``shown_as`` (default: its file name), never its path."""
    report = progress or (lambda stage, fraction: None)
    shown = shown_as or Path(video).name
    report("checking", 0.0)
    env = load_site(store, environment)
    check_new_camera(store, env, camera)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise OnboardingError(f"camera {camera!r}: --fps must be > 0, got {fps!r}")
    try:
        info = probe(video)
    except VideoError as exc:
        raise OnboardingError(f"camera {camera!r}: {hide_path(str(exc), video, shown)}", 415) from None
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise OnboardingError(f"camera {camera!r}: the video is {info.duration_s:.1f} s long, over the "
                              f"{max_duration_s:g} s limit: cut it shorter")
    plan = plan_cut(video, info, fps, env.segment_length_s or DEFAULT_SEGMENT_LENGTH_S, max_cut_shift_s)
    log.info("camera %s/%s from %s: %s path (%s)", environment, camera, shown, plan.path, plan.why)
    report("cutting" if plan.path == "copy" else "transcoding", _CHECKED)
    keys: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="spoton-camera-") as work:
            if plan.path == "copy":
                try:
                    counts = _copy_cut(video, plan, Path(work), store, environment, camera, keys, report)
                except VideoError as exc:  # a stream the checks missed: the slow path always works
                    reason = hide_path(str(exc), video, shown)
                    log.warning("camera %s/%s: stream copy failed (%s): transcoding instead", environment, camera,
                                reason)
                    for key in keys:
                        store.delete(key)
                    keys.clear()
                    plan = replace(plan, path="transcode", why=f"the stream copy failed: {reason}"[:300])
                    report("transcoding", _CHECKED)
            if plan.path == "transcode":
                counts = _transcode_cut(video, plan, Path(work), store, environment, camera, keys, report)
        report("registering", _CUT)
        with _REGISTERING:  # jobs on parallel workers save one at a time, each on the latest version
            env = load_site(store, environment)  # again: the site may have changed while this job ran
            check_new_camera(store, env, camera, own_keys=keys)
            new = Camera(camera, plan.fps, (info.width, info.height), source=CameraSource("store", keys[0]))
            version = save_environment(store, replace(env, cameras=env.cameras + (new,),
                                                      fps=env.fps if env.cameras else plan.fps))
    except BaseException as exc:
        for key in keys:  # nothing half-added: the camera is not saved, its sub-videos go
            store.delete(key)
        if isinstance(exc, VideoError):
            raise OnboardingError(f"camera {camera!r}: {hide_path(str(exc), video, shown)}", 415) from None
        raise
    report("registering", 1.0)
    return AddedCamera(version, tuple(keys), plan.path, plan.why, tuple(counts))


def _transcode_cut(video: Path | str, plan: CutPlan, work: Path, store: ObjectStore, environment: str, camera: str,
                   keys: list[str], report: Progress) -> list[int]:
    """Decode every frame and encode H.264 segments of exactly ``segment_frames``."""
    counts: list[int] = []
    part, writer = work / "segment.mp4", None
    every = max(1, plan.info.frame_count // 100)

    def store_segment() -> None:
        writer.close()
        keys.append(sub_video_key(environment, camera, f"{len(keys) + 1:02d}"))
        store.upload_file(part, keys[-1])
        counts.append(writer.frames_written)

    try:
        for frame in iter_frames(video):
            if frame.index % plan.segment_frames == 0:
                if writer is not None:
                    store_segment()
                writer = H264Writer(part, plan.fps, (plan.info.width, plan.info.height))
            writer.write(frame.image)
            if frame.index % every == 0:
                done = min(1.0, frame.index / plan.info.frame_count)
                report("transcoding", _CHECKED + (_CUT - _CHECKED) * done)
        if writer is not None:
            store_segment()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return counts


def _copy_cut(video: Path | str, plan: CutPlan, work: Path, store: ObjectStore, environment: str, camera: str,
              keys: list[str], report: Progress) -> list[int]:
    """Stream-copy the video into segments starting at the planned keyframes (ffmpeg's segment muxer)."""
    pattern = work / "sub_video_%02d.mp4"
    command = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(video), "-map", "0:v:0",
               "-an", "-c", "copy", "-f", "segment", "-reset_timestamps", "1", "-segment_format", "mp4",
               "-segment_format_options", "movflags=+faststart", "-progress", "pipe:1"]
    if plan.cuts:
        command += ["-segment_frames", ",".join(map(str, plan.cuts))]
    command.append(str(pattern))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith("frame="):
                done = min(1.0, int(line.split("=", 1)[1] or 0) / plan.info.frame_count)
                report("cutting", _CHECKED + (_CUT - _CHECKED) * 0.8 * done)
        errors = process.stderr.read()
        if process.wait() != 0:
            raise VideoError(f"ffmpeg could not cut the video: {errors.strip()[-300:]}")
    except BaseException:
        process.kill()
        process.wait()
        raise
    bounds = (0, *plan.cuts, plan.info.frame_count)
    expected = [b - a for a, b in zip(bounds, bounds[1:])]
    parts = sorted(work.glob("sub_video_*.mp4"))
    counts = [(stream_facts(p) or StreamFacts("", None, 0, 0, None, (), -1)).packets for p in parts]
    if counts != expected:
        raise VideoError(f"the stream-copy cut made segments of {counts} frames where {expected} were planned")
    for index, part in enumerate(parts, start=1):
        keys.append(sub_video_key(environment, camera, f"{index:02d}"))
        store.upload_file(part, keys[-1])
        report("cutting", _CHECKED + (_CUT - _CHECKED) * (0.8 + 0.2 * index / len(parts)))
    return counts
