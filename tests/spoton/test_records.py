import numpy as np
import pytest

from spoton.records import CameraFrameResult, Detections, Tracks


def test_detections_validate_shapes_once():
    det = Detections([[0, 0, 10, 20], [5, 5, 15, 25]], [0.9, 0.5], [0, 0])
    assert det.xyxy.dtype == np.float32 and det.xyxy.shape == (2, 4)
    assert len(det) == 2
    with pytest.raises(ValueError, match="xyxy must have shape"):
        Detections([[0, 0, 10]], [0.9], [0])
    with pytest.raises(ValueError, match="confidence has 1 rows, expected 2"):
        Detections([[0, 0, 1, 1], [0, 0, 1, 1]], [0.9], [0, 0])
    with pytest.raises(ValueError, match="embeddings has 3 rows"):
        det.with_embeddings(np.zeros((3, 8)))


def test_detections_are_immutable_and_sliceable():
    det = Detections([[0, 0, 10, 20], [5, 5, 15, 25]], [0.9, 0.5], [0, 1]).with_embeddings(np.eye(2))
    with pytest.raises(ValueError):
        det.xyxy[0, 0] = 3
    high = det[det.confidence > 0.6]
    assert len(high) == 1 and high.embeddings.shape == (1, 2) and high.class_id[0] == 0
    assert Detections.empty().to_boxmot().shape == (0, 6)
    np.testing.assert_allclose(det.to_boxmot()[1], [5, 5, 15, 25, 0.5, 1])


def test_tracks_from_boxmot_rows():
    rows = np.array([[1, 2, 3, 4, 7, 0.8, 0, 1], [5, 6, 7, 8, 9, 0.6, 0, 0]], np.float32)
    tracks = Tracks.from_boxmot(rows)
    assert tracks.track_id.tolist() == [7, 9] and tracks.det_index.tolist() == [1, 0]
    assert len(Tracks.from_boxmot(np.zeros((0, 8)))) == 0


def test_camera_frame_result_requires_one_map_point_per_track():
    tracks = Tracks.from_boxmot(np.array([[1, 2, 3, 4, 7, 0.8, 0, 0]]))
    with pytest.raises(ValueError, match="map_xy has 2 rows, expected 1"):
        CameraFrameResult("c1", 0, 0.0, (10, 10), Detections.empty(), tracks, np.zeros((2, 2)))
