"""Model configuration shared by the per-frame assets: which detector, tracker and embedder."""
from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from spoton.appearance import CROPS_PER_TRACKLET, TRACKLET_CROP_SIZE
from spoton.models.detector import DetectorConfig, build_detector
from spoton.postprocess import TrackletCut
from spoton.processor import CameraSpec, FrameProcessor
from spoton.tracking import TrackerConfig


class PerceptionResource(ConfigurableResource):
    """Detector, tracker, embedder and processing rate.

    ``ort_threads`` bounds ONNX Runtime's threads per process so that the
    multiprocess executor's partitions share the cores instead of oversubscribing.
    """

    detector: str = "nanodet"
    detector_model: str | None = None
    score_threshold: float = 0.2
    resize: str = "stretch"
    tracker: str = "bytetrack"
    embedder: str = "mobilenetv2"
    embedder_weights: str | None = None
    processing_fps: float | None = None  # None: every frame
    ort_threads: int = 1
    # each tracklet's appearance: the mean of this many crops, each resized to crop_width x
    # crop_height for MobileNetV2 (spoton.appearance)
    crops_per_tracklet: int = CROPS_PER_TRACKLET
    crop_width: int = TRACKLET_CROP_SIZE[0]
    crop_height: int = TRACKLET_CROP_SIZE[1]
    # tracks are cut into tracklets where the tracker took them up again after this many missed
    # frames and every max_tracklet_s; global_identities re-joins the pieces (None: no such cut;
    # spoton.postprocess.TrackletCut, docs/benchmarks.md)
    split_after_missed_frames: int | None = TrackletCut.split_after_missed_frames
    max_tracklet_s: float | None = TrackletCut.max_tracklet_s

    def tracklet_cut(self) -> TrackletCut:
        return TrackletCut(self.split_after_missed_frames, self.max_tracklet_s)

    def build_processor(self, cameras: list[CameraSpec], frame_rate: float) -> FrameProcessor:
        os.environ.setdefault("SPOTON_ORT_THREADS", str(self.ort_threads))
        detector = build_detector(self.detector, Path(self.detector_model) if self.detector_model else None,
                                  DetectorConfig(score_threshold=self.score_threshold, resize=self.resize),
                                  threads=self.ort_threads)
        tracker_config = TrackerConfig(self.tracker, frame_rate=frame_rate)
        embedder = self.build_embedder() if tracker_config.needs_embeddings else None
        return FrameProcessor(cameras, detector, tracker_config, embedder)

    def build_embedder(self):
        import torch

        from spoton.models.embedder import build_embedder

        torch.set_num_threads(self.ort_threads)
        return build_embedder(self.embedder, Path(self.embedder_weights) if self.embedder_weights else None,
                              crop_size=(self.crop_width, self.crop_height))
