import json
from pathlib import Path

import numpy as np
import pytest

from spoton.records import Detections
from spoton.perception.tracking import Tracker, TrackerConfig
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _walk(tracker: Tracker, steps: int = 8, start: int = 0):
    image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    tracks = None
    for step in range(start, start + steps):
        det = Detections([[10 + 5 * step, 10, 50 + 5 * step, 100], [300, 150, 340, 260]], [0.9, 0.85], [0, 0])
        if tracker.needs_embeddings:
            det = det.with_embeddings(np.eye(2, 16))
        tracks = tracker.update(det, image)
    return tracks


@pytest.mark.parametrize("name", ["bytetrack", "ocsort", "botsort", "deepocsort"])
def test_each_tracker_follows_two_people(name):
    tracks = _walk(Tracker(TrackerConfig(name)))
    assert len(tracks) == 2 and len(set(tracks.track_id.tolist())) == 2


def test_trackers_own_their_state_and_reset_starts_over():
    first, second = Tracker(), Tracker()
    ids_first = set(_walk(first).track_id.tolist())
    assert set(_walk(second).track_id.tolist()) == ids_first  # ids count per tracker, not globally
    assert set(_walk(first, steps=2, start=8).track_id.tolist()) == ids_first  # untouched by `second`
    first.reset()
    assert len(first.update(Detections.empty(), np.zeros((10, 10, 3), np.uint8))) == 0


def test_appearance_tracker_demands_embeddings():
    tracker = Tracker(TrackerConfig("botsort"))
    det = Detections([[0, 0, 10, 30]], [0.9], [0])
    with pytest.raises(ValueError, match="uses appearance"):
        tracker.update(det, np.zeros((50, 50, 3), np.uint8))


def test_unknown_tracker_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        TrackerConfig("sort2000")


@pytest.mark.integration
def test_one_id_for_a_person_walking_alone(sample_video, cache_dir):
    """Real clip (vtest frames 200..259): GT person 13 walks with nobody near them."""
    from spoton.models.detector import NanoDetDetector
    from spoton.video import iter_frames

    truth = json.loads((FIXTURES / "vtest_person13_alone.json").read_text())
    gt = dict(zip(truth["frames"], np.array(truth["xyxy"])))
    detector, tracker = NanoDetDetector(cache_dir=cache_dir), Tracker()
    matched_ids = []
    for frame in iter_frames(sample_video, start=min(gt), stop=max(gt) + 1):
        tracks = tracker.update(detector.detect(frame.image), frame.image)
        box = gt[frame.index]
        if len(tracks):
            ious = _iou(tracks.xyxy, box)
            if ious.max() >= 0.5:
                matched_ids.append(int(tracks.track_id[ious.argmax()]))
    assert len(matched_ids) >= 0.8 * len(gt), f"person tracked in only {len(matched_ids)}/{len(gt)} frames"
    assert len(set(matched_ids)) == 1, f"identity changed: {sorted(set(matched_ids))}"


def _iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1 = np.maximum(boxes[:, 0], box[0]); y1 = np.maximum(boxes[:, 1], box[1])
    x2 = np.minimum(boxes[:, 2], box[2]); y2 = np.minimum(boxes[:, 3], box[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + (box[2] - box[0]) * (box[3] - box[1]) - inter)


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_removed_tracks_do_not_pile_up_over_a_long_session(name):
    """boxmot keeps every removed track; a live session runs for days, so the tracker trims them."""
    from spoton.perception.tracking import REMOVED_TRACKS_KEPT

    tracker = Tracker(TrackerConfig(name, frame_rate=30, params={"track_buffer": 1}))
    image = np.zeros((300, 400, 3), np.uint8)
    for step in range(3 * REMOVED_TRACKS_KEPT):  # a new person every other frame, gone the next
        det = Detections([[10 + step % 300, 10, 50 + step % 300, 100]], [0.9], [0]) if step % 2 == 0 \
            else Detections.empty()
        if tracker.needs_embeddings and len(det):
            det = det.with_embeddings(np.eye(1, 16))
        tracker.update(det, image)
    assert 0 < len(tracker._tracker.removed_stracks) <= REMOVED_TRACKS_KEPT
