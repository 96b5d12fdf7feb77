"""Single-video tracking run: what ``spoton track`` does, reusable by benchmarks and tests."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from spoton.annotate import draw_tracks
from spoton.perception.appearance import embed_tracklets
from spoton.perception.config import PerceptionConfig
from spoton.identity.postprocess import OfflineConfig, clean_camera_tracks
from spoton.perception.processor import CameraSpec
from spoton.records import CameraFrameResult, Tracks
from spoton.storage.schemas import detections_table, normalised_box_columns, tracks_table, write_parquet_atomic
from spoton.video import H264Writer, iter_frames, probe


@dataclass(frozen=True)
class TrackOptions:
    """One video's run: the perception configuration (its ``processing_fps`` is the rate frames are
    sampled at) plus what only a single-video run has."""

    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    max_frames: int | None = None
    camera: str = "cam"
    write_video: bool = True
    calibration: Path | None = None  # image <-> map file: map positions, tracked region
    tracker_frame_rate: float = 7.0  # the footage's real rate (vtest.avi's header says 10, PETS is 7)
    offline: OfflineConfig | None = field(default_factory=OfflineConfig)  # None: online tracks only


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


def track_video(video: Path, out_dir: Path, options: TrackOptions = TrackOptions(),
                progress: bool = False) -> TrackSummary:
    """Detect and track people in one video; write Parquet tables and an annotated H.264 MP4.

    Pass 1 runs the online processor over the video. Unless ``options.offline`` is None, the
    tracks are then cleaned up knowing the whole sequence (swaps at crossings re-decided, with crops
    from one more decode up to the last crossing; stitching after occlusions, holes interpolated,
    fleeting identities dropped: :func:`spoton.identity.postprocess.clean_camera_tracks`).
    Pass 2 decodes again (cheap next to detection) to draw the final tracks into the MP4.
    """
    import pyarrow as pa

    info = probe(video)  # fails early, with a clear message, on a bad file
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    camera = (CameraSpec.from_calibration(options.camera, options.calibration) if options.calibration
              else CameraSpec(options.camera))
    processor = options.perception.build_processor([camera], options.tracker_frame_rate)
    fps = options.perception.processing_fps
    stop = options.max_frames if fps is None else None
    frames = iter_frames(video, fps=fps, stop=stop)
    total = info.frame_count if options.max_frames is None else min(info.frame_count, options.max_frames)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, total=total, unit="frame", desc=Path(video).name)
    results: list[CameraFrameResult] = []
    started = time.perf_counter()
    for frame in frames:
        if options.max_frames is not None and len(results) >= options.max_frames:
            break
        results.append(processor.process({options.camera: frame})[options.camera])
    online = tracks_table(results)
    if options.offline is not None:
        embed = None
        if options.offline.crossings is not None:  # crossings' crops: one more decode, up to the last crop

            def embed(crops):
                embedder = replace(options.perception, crop_size=options.offline.crossings.crop_size).build_embedder()
                return embed_tracklets(crops, lambda camera, end: iter_frames(video, fps=fps, stop=end),
                                       embedder, options.offline.crossings.crops)[0]
        cleaned = clean_camera_tracks(online.to_pandas(), options.tracker_frame_rate, options.offline, embed)
        cleaned = cleaned.assign(**normalised_box_columns(cleaned[["x1", "y1", "x2", "y2"]].to_numpy(np.float64),
                                                          info.width, info.height))
        tracks = pa.Table.from_pandas(cleaned, preserve_index=False)
    else:
        tracks = online
    outputs = {"detections": write_parquet_atomic(detections_table(results), out_dir / "detections.parquet"),
               "tracks": write_parquet_atomic(tracks, out_dir / "tracks.parquet")}
    if options.write_video:
        outputs["annotated video"] = _write_annotated(video, out_dir / "annotated.mp4", tracks, options,
                                                      fps or info.fps, (info.width, info.height))
    seconds = time.perf_counter() - started
    frame_index = tracks.column("frame_index").to_numpy()
    return TrackSummary(
        frames=len(results),
        detections=int(sum(len(r.detections) for r in results)),
        tracks=int(len(np.unique(tracks.column("track_id").to_numpy()))),
        people_per_frame=float(len(frame_index) / len(results)) if results else 0.0,
        seconds=seconds, outputs=outputs)


def _write_annotated(video: Path, path: Path, tracks, options: TrackOptions, fps: float,
                     size: tuple[int, int]) -> Path:
    """Draw ``tracks`` on the processed frames into an H.264 MP4 (no partial file on failure)."""
    columns = tracks.select(["frame_index", "x1", "y1", "x2", "y2", "track_id"]).to_pandas()
    by_frame = {index: rows for index, rows in columns.groupby("frame_index")}
    sampling = options.perception.processing_fps
    stop = options.max_frames if sampling is None else None
    with H264Writer(path, fps, size) as writer:
        for count, frame in enumerate(iter_frames(video, fps=sampling, stop=stop)):
            if options.max_frames is not None and count >= options.max_frames:
                break
            rows = by_frame.get(frame.index)
            if rows is None:
                writer.write(frame.image)
                continue
            n = len(rows)
            drawn = Tracks(rows[["x1", "y1", "x2", "y2"]].to_numpy(), rows["track_id"].to_numpy(),
                           np.ones(n), np.zeros(n), np.arange(n))
            writer.write(draw_tracks(frame.image, drawn))
    return path
