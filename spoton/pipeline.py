"""Single-video tracking run: what ``spoton track`` does, reusable by benchmarks and tests."""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spoton.annotate import draw_tracks
from spoton.models.detector import DetectorConfig, build_detector
from spoton.processor import FrameProcessor
from spoton.records import CameraFrameResult
from spoton.schemas import detections_table, tracks_table, write_parquet_atomic
from spoton.tracking import TrackerConfig
from spoton.video import H264Writer, iter_frames, probe


@dataclass(frozen=True)
class TrackOptions:
    detector: str = "nanodet"
    detector_model: Path | None = None
    detector_config: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: str = "bytetrack"
    embedder: str = "mobilenetv2"
    embedder_weights: Path | None = None
    fps: float | None = None  # processing rate; None = every frame
    max_frames: int | None = None
    camera: str = "cam"
    write_video: bool = True


@dataclass(frozen=True)
class TrackSummary:
    frames: int
    detections: int
    tracks: int
    people_per_frame: float
    seconds: float
    outputs: dict[str, Path]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else float("nan")

    def format(self) -> str:
        lines = [f"frames processed   {self.frames}",
                 f"people per frame   {self.people_per_frame:.2f} (mean tracked boxes)",
                 f"detections         {self.detections}",
                 f"distinct tracks    {self.tracks}",
                 f"processing speed   {self.fps:.1f} frames/s ({self.seconds:.1f} s)"]
        lines += [f"{name:<18} {path}" for name, path in self.outputs.items()]
        return "\n".join(lines)


def build_processor(options: TrackOptions, cameras: list) -> FrameProcessor:
    tracker_config = TrackerConfig(options.tracker)
    embedder = None
    if tracker_config.needs_embeddings:
        from spoton.models.embedder import build_embedder

        embedder = build_embedder(options.embedder, options.embedder_weights)
    detector = build_detector(options.detector, options.detector_model, options.detector_config)
    return FrameProcessor(cameras, detector, tracker_config, embedder)


def track_video(video: Path, out_dir: Path, options: TrackOptions = TrackOptions(),
                progress: bool = False) -> TrackSummary:
    """Detect and track people in one video; write Parquet tables and an annotated H.264 MP4."""
    info = probe(video)  # fails early, with a clear message, on a bad file
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    processor = build_processor(options, [options.camera])
    stop = options.max_frames if options.fps is None else None
    frames = iter_frames(video, fps=options.fps, stop=stop)
    total = info.frame_count if options.max_frames is None else min(info.frame_count, options.max_frames)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, total=total, unit="frame", desc=Path(video).name)
    results: list[CameraFrameResult] = []
    out_fps = options.fps or info.fps
    video_path = out_dir / "annotated.mp4"
    writer = H264Writer(video_path, out_fps, (info.width, info.height)) if options.write_video else nullcontext()
    started = time.perf_counter()
    with writer:  # a failed run leaves no partial MP4
        for frame in frames:
            if options.max_frames is not None and len(results) >= options.max_frames:
                break
            result = processor.process({options.camera: frame})[options.camera]
            results.append(result)
            if options.write_video:
                writer.write(draw_tracks(frame.image, result.tracks))
    seconds = time.perf_counter() - started
    outputs = {"detections": write_parquet_atomic(detections_table(results), out_dir / "detections.parquet"),
               "tracks": write_parquet_atomic(tracks_table(results), out_dir / "tracks.parquet")}
    if options.write_video:
        outputs["annotated video"] = video_path
    track_ids = np.concatenate([r.tracks.track_id for r in results]) if results else np.zeros(0)
    return TrackSummary(
        frames=len(results),
        detections=int(sum(len(r.detections) for r in results)),
        tracks=int(len(np.unique(track_ids))),
        people_per_frame=float(np.mean([len(r.tracks) for r in results])) if results else 0.0,
        seconds=seconds, outputs=outputs)
