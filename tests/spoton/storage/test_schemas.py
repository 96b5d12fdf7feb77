from dataclasses import fields

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from spoton.evaluation.metrics import TrackingMetrics
from spoton.records import CameraFrameResult, Detections, Tracks
from spoton.storage.schemas import (CAMERA_TRACKS, DETECTIONS, DETECTIONS_SCHEMA, DWELL, OCCUPANCY, TABLES, TRACKING_EVALUATION,
                            TRACKLETS, TRACKS_SCHEMA, Column, TableContractError, detections_table, table_contract,
                            tracks_table)


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


# ---- table contracts: one per lake table, checked on write and on read -------------------------------

def _other_type(column: Column) -> pa.DataType:
    return pa.int64() if pa.types.is_string(column.type) else pa.string()


@pytest.mark.parametrize("contract", TABLES.values(), ids=list(TABLES))
def test_each_contract_accepts_its_table_and_rejects_a_missing_mistyped_or_unexpected_column(contract):
    table = contract.schema.empty_table()
    assert contract.check(table) is table
    stored = [c.name for c in contract.stored_columns]
    assert stored[0] == "environment" and (stored[1] == "segment") == contract.per_segment

    victim = contract.columns[-1]
    with pytest.raises(TableContractError, match=rf"{contract.name}: missing {victim.name} \({victim.type}: "):
        contract.check(table.drop_columns(victim.name))
    mistyped = table.set_column(len(contract.columns) - 1, victim.name, pa.array([], _other_type(victim)))
    with pytest.raises(TableContractError, match=rf"mistyped column: {victim.name} is {_other_type(victim)}, "
                                                 rf"the contract says {victim.type}"):
        contract.check(mistyped)
    with pytest.raises(TableContractError, match="unexpected surprise"):
        contract.check(table.append_column("surprise", pa.array([], pa.int64())))
    with pytest.raises(TableContractError, match="missing environment"):  # a lake file has its partition columns
        contract.check(table, stored=True)


def test_table_builds_from_pandas_in_contract_order_with_nan_as_null():
    frame = pd.DataFrame({"zone": ["door"], "mean_people": [np.nan], "people": [2], "t_end": [10], "t_start": [0.0]})
    table = OCCUPANCY.table(frame)
    assert table.column_names == ["zone", "t_start", "t_end", "people", "mean_people"]
    assert table.schema.field("t_end").type == pa.float64() and table["t_end"].to_pylist() == [10.0]
    assert table["mean_people"].to_pylist() == [None]
    assert OCCUPANCY.check(table) is table


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"zone": ["door"], "t_start": ["soon"], "t_end": [1.0], "people": [1], "mean_people": [1.0]}),
     "occupancy: a column cannot take its contract type"),
    (pd.DataFrame({"zone": [None], "t_start": [0.0], "t_end": [1.0], "people": [1], "mean_people": [1.0]}),
     "occupancy: a column cannot take its contract type .*zone.*non-nullable"),
    (pd.DataFrame({"zone": ["door"], "t_start": [0.0], "people": [1], "mean_people": [1.0]}),
     r"occupancy: missing t_end \(double: bucket end"),
])
def test_table_refuses_what_its_contract_cannot_hold(frame, message):
    with pytest.raises(TableContractError, match=message):
        OCCUPANCY.table(frame)


def test_arrow_tables_are_cast_and_nulls_in_required_columns_refused():
    row = {"global_id": 3, "zone": "door", "enter_ts": 1, "exit_ts": 2, "seconds": 1}
    table = DWELL.table(pa.Table.from_pylist([row]))
    assert table.schema.field("enter_ts").type == pa.float64()
    with pytest.raises(TableContractError, match=r"null values .*: global_id \(1\)"):
        DWELL.table(pa.Table.from_pylist([row | {"global_id": None}]))


def test_empty_frames_carry_the_contract_dtypes():
    frame = CAMERA_TRACKS.empty_frame()
    assert list(frame.columns) == CAMERA_TRACKS.names
    assert frame["global_id"].dtype == np.int64 and frame["x1"].dtype == np.float32 and frame["interpolated"].dtype == bool


def test_a_column_needs_a_one_line_description():
    for description in ("", "two\nlines"):
        with pytest.raises(ValueError, match="'x' needs a one-line description"):
            Column("x", pa.int64(), description)


def test_unknown_table_names_the_known_ones():
    assert table_contract("camera_tracks") is CAMERA_TRACKS
    with pytest.raises(TableContractError, match="no table contract for 'camera_track'.*'camera_tracks'"):
        table_contract("camera_track")


def test_tracking_evaluation_contract_holds_every_metric_and_record_field():
    metric_columns = TRACKING_EVALUATION.names[2:2 + len(fields(TrackingMetrics))]
    assert metric_columns == [f.name for f in fields(TrackingMetrics)]
    assert all(TRACKING_EVALUATION.schema.field(f.name).type == (pa.int64() if f.type in (int, "int") else pa.float64())
               for f in fields(TrackingMetrics))


def test_the_file_schemas_are_the_lake_tables_without_the_clock_columns():
    assert DETECTIONS_SCHEMA.names + ["global_frame"] == DETECTIONS.names
    assert TRACKS_SCHEMA.names + ["global_frame", "tracklet_id"] == TRACKLETS.names
    assert [DETECTIONS_SCHEMA.field(n).type for n in DETECTIONS_SCHEMA.names] == [
        DETECTIONS.schema.field(n).type for n in DETECTIONS_SCHEMA.names]
