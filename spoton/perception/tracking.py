"""Per-camera multi-object tracking behind one ``update(detections, frame)`` contract.

boxmot (AGPL-3.0) provides the trackers. Appearance-aware trackers are fed the
embeddings SpotOn computed itself (``Detections.embeddings``), so no ReID model
is ever loaded or downloaded by boxmot. Each ``Tracker`` owns its state: one per
camera per job or live session; ``reset()`` starts a fresh sequence.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spoton.records import Detections, Tracks

# name -> (boxmot class name, whether it consumes embeddings, SpotOn defaults)
# ByteTrack: tracks start at score >= 0.5 (0.45 let flickering far-away boxes open tracks) and a
# lost track is kept for track_buffer * frame_rate / 30 frames = 3 s (boxmot's scaling), long
# enough to bridge an occlusion by a passer-by. Measured in docs/benchmarks.md.
TRACKERS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "bytetrack": ("ByteTrack", False, {"min_conf": 0.1, "track_thresh": 0.5, "match_thresh": 0.8,
                                       "track_buffer": 90}),
    "ocsort": ("OcSort", False, {"min_conf": 0.1}),
    "botsort": ("BotSort", True, {"use_cmc": False, "track_buffer": 30}),
    "deepocsort": ("DeepOcSort", True, {"cmc_off": True}),
}
# boxmot's trackers append every removed track to a list they never trim (ByteTrack and
# BotSort's ``removed_stracks``): over a live session that is unbounded memory and per-frame
# work. Only the tracks removed by the previous update are ever read back, so a tail is enough.
REMOVED_TRACKS_KEPT = 256


@dataclass(frozen=True)
class TrackerConfig:
    """Which boxmot tracker to run, at what frame rate, with which overrides."""

    name: str = "bytetrack"
    frame_rate: float = 7.0
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in TRACKERS:
            raise ValueError(f"unknown tracker {self.name!r}: choose one of {sorted(TRACKERS)}")

    @property
    def needs_embeddings(self) -> bool:
        return TRACKERS[self.name][1]


class Tracker:
    """One camera's tracker: ``update(Detections, frame) -> Tracks``."""

    def __init__(self, config: TrackerConfig = TrackerConfig()):
        self.config = config
        self._tracker = self._build()

    def _build(self):
        import boxmot

        class_name, uses_embeddings, defaults = TRACKERS[self.config.name]
        tracker_class = getattr(boxmot, class_name)  # lazy import; resets boxmot's logger
        logging.getLogger("boxmot").setLevel(logging.WARNING)  # it logs each constructor at INFO
        params = {**defaults, **self.config.params}
        if uses_embeddings:
            params["use_embeddings"] = True
        if "frame_rate" in inspect.signature(tracker_class.__init__).parameters:
            params.setdefault("frame_rate", max(1, round(self.config.frame_rate)))
        return tracker_class(**params)

    @property
    def needs_embeddings(self) -> bool:
        return self.config.needs_embeddings

    def reset(self) -> None:
        """Forget all tracks (a new sequence, or a session restarted)."""
        self._tracker = self._build()

    def update(self, detections: Detections, frame: np.ndarray) -> Tracks:
        if self.needs_embeddings:
            if detections.embeddings is None and len(detections):
                raise ValueError(
                    f"tracker {self.config.name!r} uses appearance: pass detections with "
                    "embeddings (Detections.with_embeddings) or choose bytetrack/ocsort")
            output = self._tracker.update(self._to_boxmot_detections(detections), frame)
            rows = output.to_aabb_rows().numpy()
        else:
            rows = self._tracker.update(detections.to_boxmot(), frame)
        self._trim_removed_tracks()
        return Tracks.from_boxmot(rows)

    def _trim_removed_tracks(self) -> None:
        from boxmot.trackers.common.tracking.collections import track_collection_attrs

        for name in track_collection_attrs("removed"):
            removed = getattr(self._tracker, name, None)
            if isinstance(removed, list) and len(removed) > REMOVED_TRACKS_KEPT:
                del removed[:-REMOVED_TRACKS_KEPT]

    def _to_boxmot_detections(self, detections: Detections):
        import torch
        from boxmot.structures.detections import Detections as BoxmotDetections
        from boxmot.structures.geometry import Boxes

        embeddings = detections.embeddings
        if embeddings is None:  # no boxes this frame
            embeddings = np.zeros((0, 1), np.float32)
        return BoxmotDetections(
            geometry=Boxes(torch.from_numpy(np.array(detections.xyxy, np.float32))),
            scores=torch.from_numpy(np.array(detections.confidence.clip(0, 1), np.float32)),
            class_ids=torch.from_numpy(np.array(detections.class_id, np.int64)),
            sample_id="frame",
            embeddings=torch.from_numpy(np.array(embeddings, np.float32)) if len(detections) else None,
        )
