"""FrameProcessor: synchronized frames of N cameras in, detections, tracks and map positions out.

This is the one object both the Dagster assets (over decoded sub-videos) and
the live sessions (over the latest frame of each source) drive, so a person
gets the same kind of track and map position in a backfill as live.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from spoton.geometry import Homography, foot_points, homography_scale, points_in_polygon
from spoton.models.base import Detector, Embedder
from spoton.records import CameraFrameResult
from spoton.perception.tracking import Tracker, TrackerConfig


class FrameInput(Protocol):
    """One camera's frame at an instant (``spoton.video.VideoFrame`` satisfies it)."""

    index: int
    ts: float
    image: np.ndarray


@dataclass(frozen=True, eq=False)
class CameraSpec:
    """A camera as the processor sees it.

    ``region_m``: the floor-plan polygon (metres) this camera tracks people in. Detections whose
    foot point falls outside it (far away, beyond the calibrated ground) are dropped before
    tracking. None tracks everything. ``vertical_vanishing_point`` (pixels) puts foot points on
    the person's axis instead of the box's bottom-centre (:func:`spoton.geometry.foot_points`).
    """

    name: str
    homography: Homography | None = None  # image pixels -> floor-plan metres
    region_m: np.ndarray | None = None
    vertical_vanishing_point: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.vertical_vanishing_point is not None:
            point = np.array(self.vertical_vanishing_point, dtype=np.float64).reshape(-1)
            if point.shape != (2,) or not np.isfinite(point).all():
                raise ValueError(f"camera {self.name!r}: vertical_vanishing_point must be [x, y] in pixels (finite), "
                                 f"got {self.vertical_vanishing_point!r}; leave it out for bottom-centre foot points")
            point.setflags(write=False)
            object.__setattr__(self, "vertical_vanishing_point", point)

    @classmethod
    def from_calibration(cls, name: str, path: Path) -> "CameraSpec":
        """From a calibration file (image/map point pairs, optional ``region_m`` polygon and
        ``vertical_vanishing_point``)."""
        spec = json.loads(Path(path).read_text())
        region, vanishing = spec.get("region_m"), spec.get("vertical_vanishing_point")
        return cls(name, Homography.from_json(path), None if region is None else np.asarray(region, np.float64),
                   None if vanishing is None else np.asarray(vanishing, np.float64))

    def map_positions(self, xyxy: np.ndarray) -> np.ndarray:
        """(N, 2) floor metres of boxes' foot points; NaN without a homography."""
        if self.homography is None:
            return np.full((len(xyxy), 2), np.nan)
        return self.homography.to_map(foot_points(xyxy, self.vertical_vanishing_point))

    def foot_spread_m(self, xyxy: np.ndarray) -> np.ndarray:
        """(N,) floor metres one box height of pixels spans at each box's foot point: the scale of
        its map position's error (a box's bottom slips by a share of its height, and a pixel there
        weighs the floor metres the calibration gives it). NaN without a homography."""
        if self.homography is None:
            return np.full(len(xyxy), np.nan)
        xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
        feet = foot_points(xyxy, self.vertical_vanishing_point)
        return (xyxy[:, 3] - xyxy[:, 1]) * homography_scale(self.homography.image_to_map, feet)

    def in_region(self, xyxy: np.ndarray) -> np.ndarray:
        """(N,) bool: boxes whose foot point is inside ``region_m`` (all True without one)."""
        if self.region_m is None or self.homography is None or not len(xyxy):
            return np.ones(len(xyxy), bool)
        return points_in_polygon(self.map_positions(xyxy), self.region_m)


class FrameProcessor:
    """Runs detect -> (embed) -> track -> project for each camera, one tracker per camera.

    Embeddings are computed only when the tracker consumes them or
    ``embed_detections`` asks for them (e.g. to build identity galleries).

    ``workers`` > 1 processes the cameras of an instant side by side (the calling thread plus
    ``workers - 1`` pool threads): ONNX Runtime and OpenCV release the GIL, each camera has its
    own tracker and the detector is stateless, so the results are those of the sequential path.
    Give the detector 1 intra-op thread then, or the cameras fight over the cores. :meth:`close`
    ends the pool.
    """

    def __init__(self, cameras: Sequence[CameraSpec | str], detector: Detector,
                 tracker_config: TrackerConfig = TrackerConfig(), embedder: Embedder | None = None,
                 embed_detections: bool = False, workers: int = 1):
        self.cameras = {c.name: c for c in (CameraSpec(c) if isinstance(c, str) else c for c in cameras)}
        self.detector = detector
        self.tracker_config = tracker_config
        self.embedder = embedder
        self.embed_detections = embed_detections
        if (tracker_config.needs_embeddings or embed_detections) and embedder is None:
            raise ValueError(
                f"tracker {tracker_config.name!r} or embed_detections needs an embedder: pass "
                "embedder=build_embedder() or choose bytetrack/ocsort")
        self.trackers = {name: Tracker(tracker_config) for name in self.cameras}
        if workers < 1:
            raise ValueError(f"workers must be >= 1 (1: one camera after the other), got {workers}")
        pool_size = min(workers, len(self.cameras)) - 1
        self._pool = ThreadPoolExecutor(pool_size, thread_name_prefix="camera") if pool_size > 0 else None

    def close(self) -> None:
        """End the camera pool (a no-op without one); :meth:`process` then runs sequentially."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        for tracker in self.trackers.values():
            tracker.reset()

    def process(self, frames: Mapping[str, FrameInput]) -> dict[str, CameraFrameResult]:
        """Process the cameras present at this instant; absent cameras keep their tracker state."""
        unknown = set(frames) - set(self.cameras)
        if unknown:
            raise KeyError(f"frames for unknown cameras {sorted(unknown)}; known: {sorted(self.cameras)}")
        if self._pool is None or len(frames) < 2:
            return {name: self.process_camera(name, frame) for name, frame in frames.items()}
        (first, first_frame), *rest = frames.items()
        futures = {name: self._pool.submit(self.process_camera, name, frame) for name, frame in rest}
        results = {first: self.process_camera(first, first_frame)}  # this thread works too
        results.update((name, future.result()) for name, future in futures.items())
        return {name: results[name] for name in frames}

    def process_camera(self, camera: str, frame: FrameInput) -> CameraFrameResult:
        image = frame.image
        spec = self.cameras[camera]
        detections = self.detector.detect(image)
        if spec.region_m is not None:
            detections = detections[spec.in_region(detections.xyxy)]
        if self.embedder is not None and (self.tracker_config.needs_embeddings or self.embed_detections):
            detections = detections.with_embeddings(self.embedder.embed(image, detections.xyxy)
                                                    if len(detections) else
                                                    np.zeros((0, self.embedder.dim), np.float32))
        tracks = self.trackers[camera].update(detections, image)
        map_xy = spec.map_positions(tracks.xyxy) if len(tracks) else np.full((0, 2), np.nan)
        height, width = image.shape[:2]
        return CameraFrameResult(camera=camera, frame_index=int(frame.index), ts=float(frame.ts),
                                 frame_size=(width, height), detections=detections, tracks=tracks,
                                 map_xy=map_xy)




@dataclass(frozen=True)
class ClockFrame:
    """A decoded frame placed on the environment clock (satisfies ``FrameInput``)."""

    index: int  # frame index within its own video
    global_frame: int  # frame index on the environment clock: equal means simultaneous
    ts: float  # seconds on the environment clock
    image: np.ndarray


def synchronized(streams: Mapping[str, Iterable[ClockFrame]]) -> Iterator[dict[str, ClockFrame]]:
    """Merge per-camera streams (each ordered by ``global_frame``) into instants.

    Each yielded dict holds the cameras that have a frame at that instant, so a
    camera that starts later simply joins when its frames begin.
    """
    iterators = {name: iter(stream) for name, stream in streams.items()}
    heads = {name: next(it, None) for name, it in iterators.items()}
    while any(frame is not None for frame in heads.values()):
        instant = min(frame.global_frame for frame in heads.values() if frame is not None)
        now = {name: frame for name, frame in heads.items() if frame is not None and frame.global_frame == instant}
        for name in now:
            heads[name] = next(iterators[name], None)
        yield now
