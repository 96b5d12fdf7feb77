"""One perception configuration and the one builder of the FrameProcessor.

The CLI (``spoton track``), the Dagster resource (``resources/perception.py``) and the live
sessions (``apps/live_api``) each map their settings onto :class:`PerceptionConfig`, so a person
is detected, tracked and embedded the same way in a backfill, a single-video run and live.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from spoton.artifacts import DEFAULT_CACHE_DIR
from spoton.perception.appearance import CROPS_PER_TRACKLET, TRACKLET_CROP_SIZE
from spoton.models.base import Detector, Embedder
from spoton.models.detector import PRECISIONS, DetectorConfig, Precision, build_detector
from spoton.identity.crossings import CrossingConfig
from spoton.identity.postprocess import TrackletCut
from spoton.perception.processor import CameraSpec, FrameProcessor
from spoton.perception.tracking import TrackerConfig

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class PerceptionConfig:
    """Detector, tracker, embedder, their thresholds, the tracklet cut, processing rate and resources.

    ``crossings`` (None: off) re-decides, per camera and segment, who leaves each crossing as whom
    before tracks are cut into tracklets (:mod:`spoton.identity.crossings`).

    ``threads`` bounds each ONNX Runtime / torch pool (None: every core), so that partitions run
    side by side share the cores. ``crop_size`` and ``crops_per_tracklet`` set each tracklet's
    appearance (the mean of that many crops, resized for MobileNetV2: ``spoton.perception.appearance``).
    ``detector_precision`` ``"int8"`` runs NanoDet's INT8 copy (less CPU per frame, slightly different
    boxes; opt-in: docs/benchmarks.md has its accuracy grid). ``camera_workers`` > 1 processes the
    cameras of an instant in parallel (live sessions: lower frame-to-tick latency; see :class:`FrameProcessor`). ``cache_dir`` holds the fetched models and
    their ONNX exports (the edges pass ``$SPOTON_CACHE``: :func:`spoton.artifacts.cache_dir_from`).
    """

    detector: str = "nanodet"
    detector_model: Path | None = None
    detector_config: DetectorConfig = field(default_factory=DetectorConfig)
    detector_precision: Precision = "fp32"
    tracker: str = "bytetrack"
    tracker_params: Mapping[str, Any] = field(default_factory=dict)
    embedder: str = "mobilenetv2"
    embedder_weights: Path | None = None
    crop_size: tuple[int, int] = TRACKLET_CROP_SIZE
    crops_per_tracklet: int = CROPS_PER_TRACKLET
    tracklet_cut: TrackletCut = field(default_factory=TrackletCut)
    crossings: CrossingConfig | None = None  # re-decide swaps at crossings before the cut (spoton.identity.crossings)
    processing_fps: float | None = None  # None: every frame
    threads: int | None = None
    device: str = "cpu"
    camera_workers: int = 1
    cache_dir: Path = DEFAULT_CACHE_DIR

    def __post_init__(self) -> None:
        self.tracker_config(1.0)  # an unknown tracker fails here, with the list of known ones
        if self.detector_precision not in PRECISIONS:
            raise ValueError(f"detector_precision {self.detector_precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.device not in DEVICES:
            raise ValueError(f"device {self.device!r}: use one of {', '.join(DEVICES)}")
        if self.processing_fps is not None and not self.processing_fps > 0:
            raise ValueError(f"processing_fps must be > 0 (or None for every frame), got {self.processing_fps}")
        if self.threads is not None and self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0 or None: every core), got {self.threads}")
        if self.camera_workers < 1:
            raise ValueError(f"camera_workers must be >= 1 (1: one camera after the other), got {self.camera_workers}")

    def tracker_config(self, frame_rate: float) -> TrackerConfig:
        return TrackerConfig(self.tracker, frame_rate=frame_rate, params=dict(self.tracker_params))

    def build_detector(self) -> Detector:
        return build_detector(self.detector, self.detector_model, self.detector_config, self.threads, self.device,
                              cache_dir=self.cache_dir, precision=self.detector_precision)

    def build_embedder(self) -> Embedder:
        import torch

        from spoton.models.embedder import build_embedder

        if self.threads:
            torch.set_num_threads(self.threads)
        return build_embedder(self.embedder, self.embedder_weights, crop_size=self.crop_size, threads=self.threads,
                              device=self.device, cache_dir=self.cache_dir)

    def build_processor(self, cameras: Sequence[CameraSpec | str], frame_rate: float,
                        detector: Detector | None = None) -> FrameProcessor:
        """The processor for ``cameras`` whose processed frames come ``frame_rate`` times a second;
        ``detector`` reuses one already loaded (live sessions share theirs)."""
        tracker_config = self.tracker_config(frame_rate)
        embedder = self.build_embedder() if tracker_config.needs_embeddings else None
        return FrameProcessor(cameras, detector or self.build_detector(), tracker_config, embedder,
                              workers=self.camera_workers)
