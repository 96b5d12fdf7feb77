import numpy as np

from spoton.records import CameraFrameResult, Detections, Tracks
from spoton.schemas import DETECTIONS_SCHEMA, TRACKS_SCHEMA, detections_table, tracks_table


def _results() -> list[CameraFrameResult]:
    """Two cameras of different sizes; the first frame's second box is not tracked, the second frame is empty."""
    first = CameraFrameResult(
        "cam1", 3, 0.5, (200, 100),
        Detections(np.array([[10, 20, 30, 60], [100, 0, 150, 50]], np.float32), np.array([0.9, 0.4]), np.zeros(2)),
        Tracks(np.array([[11, 21, 31, 61]], np.float32), np.array([7]), np.array([0.9]), np.zeros(1), np.array([0])),
        np.array([[1.5, 2.5]]))
    empty = CameraFrameResult("cam2", 4, 0.6, (400, 300), Detections.empty(),
                              Tracks(np.zeros((0, 4)), [], [], [], []), np.zeros((0, 2)))
    second = CameraFrameResult(
        "cam2", 5, 0.7, (400, 300),
        Detections(np.array([[40, 30, 80, 150]], np.float32), np.array([0.8]), np.zeros(1)),
        Tracks(np.array([[40, 30, 80, 150]], np.float32), np.array([2]), np.array([0.8]), np.zeros(1), np.array([0])),
        np.array([[np.nan, np.nan]]))
    return [first, empty, second]


def test_detection_rows_carry_their_frame_track_and_normalised_box():
    table = detections_table(_results())
    assert table.schema == DETECTIONS_SCHEMA
    rows = table.to_pylist()
    assert [(r["camera"], r["frame_index"], r["det_index"], r["track_id"]) for r in rows] == [
        ("cam1", 3, 0, 7), ("cam1", 3, 1, None), ("cam2", 5, 0, 2)]
    assert rows[1]["ts"] == 0.5 and rows[2]["ts"] == 0.7
    # normalised by each row's own frame size: 100/200, 0/100, 50/200, 50/100 and 40/400, 30/300, ...
    np.testing.assert_allclose([rows[1][k] for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")], [0.5, 0.0, 0.25, 0.5])
    np.testing.assert_allclose([rows[2][k] for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")], [0.1, 0.1, 0.1, 0.4])


def test_track_rows_keep_map_positions_and_null_where_uncalibrated():
    table = tracks_table(_results())
    assert table.schema == TRACKS_SCHEMA
    rows = table.to_pylist()
    assert [(r["camera"], r["frame_index"], r["track_id"], r["x1"]) for r in rows] == [("cam1", 3, 7, 11.0),
                                                                                      ("cam2", 5, 2, 40.0)]
    assert (rows[0]["map_x"], rows[0]["map_y"]) == (1.5, 2.5)
    assert rows[1]["map_x"] is None and rows[1]["map_y"] is None


def test_no_results_give_empty_tables_with_the_schema():
    assert detections_table([]).schema == DETECTIONS_SCHEMA and detections_table([]).num_rows == 0
    assert tracks_table(iter([])).schema == TRACKS_SCHEMA and tracks_table(iter([])).num_rows == 0
