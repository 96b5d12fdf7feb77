"""Ticks from the real detector on a real frame validate against the tick schema; boxes, velocity, map."""
from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from spoton.geometry import Homography
from spoton.live.identity import LiveIdentityGallery
from spoton.models.detector import build_detector
from spoton.perception.processor import CameraSpec, FrameProcessor
from spoton.records import CameraFrameResult, Detections, Tracks
from spoton.storage.schemas import TICK_JSON_SCHEMA
from spoton.live.tick import MEDIA_CLOCK_HZ, MEDIA_TS_STEP, TickBuilder, media_timestamp, normalised_boxes
from spoton.video import iter_frames


@pytest.mark.integration
def test_ticks_of_real_frames_validate(sample_video, cache_dir):
    homography = Homography.from_point_pairs([[0, 0], [768, 0], [768, 576], [0, 576], [300, 200]],
                                             [[0, 0], [10, 0], [10, 8], [0, 8], [3.9, 2.8]])
    processor = FrameProcessor([CameraSpec("c1", homography)], build_detector(threads=1, cache_dir=cache_dir))
    gallery, builder = LiveIdentityGallery(), TickBuilder("s-test")
    ticks = []
    for frame in iter_frames(sample_video, stop=6):
        results = processor.process({"c1": frame})
        ids = gallery.update(results, now=frame.ts)
        ticks.append(builder.build(results, ids, selected_target_id=None, mode="auto",
                                   media_ts={"c1": media_timestamp(frame.ts)}, ts_unix_ms=1_700_000_000_000, ts_mono_ms=1000 + frame.index))
    for tick in ticks:
        jsonschema.validate(tick, TICK_JSON_SCHEMA)
    last = ticks[-1]["cameras"]["c1"]
    assert last["frame_index"] == 5 and last["frame_size"] == {"w": 768, "h": 576}
    assert abs(last["media_ts"] - last["frame_ts"] * MEDIA_CLOCK_HZ) <= MEDIA_TS_STEP / 2  # seconds -> 90 kHz
    assert all(t["cameras"]["c1"]["media_ts"] % MEDIA_TS_STEP == 0 for t in ticks)
    assert len(last["tracks"]) >= 3  # PETS pedestrians
    assert any(t["velocity"] != {"x": 0.0, "y": 0.0} for t in last["tracks"])
    assert all(0 <= t["map"]["x"] <= 10.5 for t in last["tracks"])
    assert [t["seq"] for t in ticks] == list(range(6))


def _result(xyxy, ts: float) -> CameraFrameResult:
    xyxy = np.array(xyxy, np.float32)
    n = len(xyxy)
    return CameraFrameResult("c1", int(ts * 10), ts, (100, 50), Detections.empty(),
                             Tracks(xyxy, np.arange(n), np.full(n, 0.5), np.zeros(n), np.arange(n)),
                             np.full((n, 2), np.nan))


def test_boxes_clipped_velocity_per_second_and_repeated_results():
    assert normalised_boxes(np.array([[-10, 10, 50, 60]]), (100, 50)).tolist() == [[0.0, 0.2, 0.5, 0.8]]
    builder = TickBuilder("s")
    ids = {"c1": np.array([1])}
    builder.build({"c1": _result([[0, 0, 10, 10]], 1.0)}, ids, selected_target_id=1, mode="manual",
                  media_ts={"c1": 1}, ts_unix_ms=1, ts_mono_ms=1)
    moved = builder.build({"c1": _result([[10, 0, 20, 10]], 1.5)}, ids, selected_target_id=1, mode="manual",
                          media_ts={"c1": 2}, ts_unix_ms=2, ts_mono_ms=2)
    track = moved["cameras"]["c1"]["tracks"][0]
    assert track["velocity"] == {"x": pytest.approx(0.2), "y": 0.0}  # 0.1 of the width in 0.5 s
    assert track["map"] is None and track["label"] == "person"
    again = builder.build({"c1": _result([[10, 0, 20, 10]], 1.5)}, ids, selected_target_id=None, mode="auto",
                          media_ts={"c1": 2}, ts_unix_ms=3, ts_mono_ms=3)
    assert again["cameras"]["c1"]["tracks"][0]["velocity"] == track["velocity"]
    jsonschema.validate(again, TICK_JSON_SCHEMA)
    bad = {**again, "cameras": {"c1": {**again["cameras"]["c1"], "tracks": [{**track, "bbox": {**track["bbox"], "x": 1.5}}]}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, TICK_JSON_SCHEMA)
