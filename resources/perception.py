"""The Dagster face of the perception configuration: its fields map onto ``spoton.perception.config.PerceptionConfig``."""
from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from spoton.artifacts import DEFAULT_CACHE_DIR
from spoton.perception.appearance import CROPS_PER_TRACKLET, TRACKLET_CROP_SIZE
from spoton.models.detector import DetectorConfig
from spoton.perception.config import PerceptionConfig
from spoton.identity.crossings import CrossingConfig
from spoton.identity.postprocess import TrackletCut


class PerceptionResource(ConfigurableResource):
    """Detector, tracker, embedder and processing rate, as run configuration.

    ``ort_threads`` bounds ONNX Runtime's and torch's threads per process so that the
    multiprocess executor's partitions share the cores instead of oversubscribing.
    """

    detector: str = "nanodet"
    detector_model: str | None = None
    detector_precision: str = "fp32"  # "int8": NanoDet's INT8 copy (docs/benchmarks.md)
    score_threshold: float = 0.2
    resize: str = "stretch"
    tracker: str = "bytetrack"
    embedder: str = "mobilenetv2"
    embedder_weights: str | None = None
    processing_fps: float | None = None  # None: every frame
    ort_threads: int = 1
    device: str = "cpu"
    # models and their ONNX exports ($SPOTON_CACHE: orchestration.resources.perception_from_env);
    # None: the repository's .cache/spoton
    cache_dir: str | None = None
    # each tracklet's appearance: the mean of this many crops, each resized to crop_width x
    # crop_height for MobileNetV2 (spoton.perception.appearance)
    crops_per_tracklet: int = CROPS_PER_TRACKLET
    crop_width: int = TRACKLET_CROP_SIZE[0]
    crop_height: int = TRACKLET_CROP_SIZE[1]
    # tracks are cut into tracklets where the tracker took them up again after this many missed
    # frames and every max_tracklet_s; global_identities re-joins the pieces (None: no such cut;
    # spoton.identity.postprocess.TrackletCut, docs/benchmarks.md)
    split_after_missed_frames: int | None = TrackletCut.split_after_missed_frames
    max_tracklet_s: float | None = TrackletCut.max_tracklet_s
    # re-decide who leaves each crossing as whom (motion + clear crops) before the cut
    # (spoton.identity.crossings; off by default, docs/benchmarks.md)
    resolve_crossings: bool = False

    def config(self) -> PerceptionConfig:
        return PerceptionConfig(
            detector=self.detector, detector_model=Path(self.detector_model) if self.detector_model else None,
            detector_precision=self.detector_precision,
            detector_config=DetectorConfig(score_threshold=self.score_threshold, resize=self.resize),
            tracker=self.tracker, embedder=self.embedder,
            embedder_weights=Path(self.embedder_weights) if self.embedder_weights else None,
            crop_size=(self.crop_width, self.crop_height), crops_per_tracklet=self.crops_per_tracklet,
            tracklet_cut=TrackletCut(self.split_after_missed_frames, self.max_tracklet_s),
            crossings=CrossingConfig() if self.resolve_crossings else None,
            processing_fps=self.processing_fps, threads=self.ort_threads, device=self.device,
            cache_dir=Path(self.cache_dir) if self.cache_dir else DEFAULT_CACHE_DIR)
