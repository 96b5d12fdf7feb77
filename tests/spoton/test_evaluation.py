"""Tracking metrics on hand-made sequences whose right answers are worked out here by hand."""
import numpy as np
import pandas as pd
import pytest

from spoton.evaluation.metrics import MapError, evaluate_cross_camera, evaluate_sequence, map_errors
from spoton.evaluation.mot import GroundTruthError, MotBoxes
from spoton.evaluation.multi_camera import EnvironmentEvaluation, evaluate_environment
from spoton.evaluation.report import evaluation_records, evaluation_table, metrics_table
from spoton.storage.schemas import TRACKING_EVALUATION

FRAMES = 10
# two people walking right, far apart (no box of one ever overlaps the other)
PERSON_A = np.array([0.0, 0.0, 20.0, 50.0])
PERSON_B = np.array([200.0, 100.0, 220.0, 150.0])


def _walk(box: np.ndarray, frame: int) -> np.ndarray:
    return box + [3 * frame, 0, 3 * frame, 0]


def two_people(ids_a=(1,) * FRAMES, ids_b=(2,) * FRAMES, frames=range(FRAMES)) -> MotBoxes:
    """Person A and B in every frame; ids per frame (None: the box is absent)."""
    rows = [(f, i, _walk(box, f)) for f in frames
            for box, i in ((PERSON_A, ids_a[f]), (PERSON_B, ids_b[f])) if i is not None]
    frame, ids, xyxy = zip(*rows)
    map_xy = [(float(f), float(i)) for f, i, _ in rows]  # any known position per box
    return MotBoxes.create(frame, ids, np.array(xyxy), map_xy=map_xy)


def with_extra(boxes: MotBoxes, extra: MotBoxes) -> MotBoxes:
    return MotBoxes.create(np.r_[boxes.frame, extra.frame], np.r_[boxes.ids, extra.ids],
                           np.r_[boxes.xyxy, extra.xyxy], np.r_[boxes.conf, extra.conf],
                           np.r_[boxes.map_xy, extra.map_xy])


def test_perfect_tracker_scores_one():
    gt = two_people()
    pred = two_people(ids_a=(7,) * FRAMES, ids_b=(8,) * FRAMES)  # ids need not equal the GT's, only be consistent
    m = evaluate_sequence(gt, pred)
    assert m.hota == pytest.approx(1.0) and m.mota == pytest.approx(1.0) and m.idf1 == pytest.approx(1.0)
    assert (m.precision, m.recall, m.id_switches, m.false_positives, m.false_negatives) == (1.0, 1.0, 0, 0, 0)
    assert (m.gt_boxes, m.gt_ids, m.predicted_ids, m.frames, m.mostly_tracked) == (20, 2, 2, 10, 2)


def test_id_swap_halfway_lowers_idf1_by_the_expected_amount():
    gt = two_people()
    # person A carries id 1 for frames 0..4, then id 3 for frames 5..9; B keeps id 2
    pred = two_people(ids_a=(1,) * 5 + (3,) * 5)
    m = evaluate_sequence(gt, pred)
    # IDF1 = 2 IDTP / (GT + pred). One id per GT person: A <-> 1 (or 3) matches 5 boxes, B <-> 2 matches 10,
    # so IDTP = 15 of GT = pred = 20 boxes: IDF1 = 30 / 40 = 0.75 (IDP = IDR = 15 / 20)
    gt_n = pred_n = 2 * FRAMES
    idtp = FRAMES // 2 + FRAMES
    assert m.idf1 == pytest.approx(2 * idtp / (gt_n + pred_n)) and m.idf1 == pytest.approx(0.75)
    assert m.idp == pytest.approx(idtp / pred_n) and m.idr == pytest.approx(idtp / gt_n)
    # every box is still detected: one switch is the only MOTA error, MOTA = 1 - IDSW / GT
    assert m.id_switches == 1
    assert m.mota == pytest.approx(1 - 1 / gt_n)
    assert m.precision == 1.0 and m.recall == 1.0
    assert m.hota < 1.0 and m.assa < 1.0 and m.deta == pytest.approx(1.0)


def test_false_positives_lower_mota_and_precision():
    gt = two_people()
    ghosts = MotBoxes.create([2, 6], [50, 51], [[500, 300, 520, 350], [600, 10, 620, 60]])
    m = evaluate_sequence(gt, with_extra(two_people(), ghosts))
    # MOTA = 1 - (FN + FP + IDSW) / GT = 1 - 2 / 20; precision = TP / (TP + FP) = 20 / 22
    assert (m.false_positives, m.false_negatives, m.true_positives) == (2, 0, 20)
    assert m.mota == pytest.approx(1 - 2 / 20)
    assert m.precision == pytest.approx(20 / 22) and m.recall == pytest.approx(1.0)
    # IDF1 = 2 * 20 / (20 + 22)
    assert m.idf1 == pytest.approx(40 / 42)


def test_misses_lower_mota_and_recall():
    gt = two_people()
    pred = two_people(ids_b=(2,) * 6 + (None,) * 4)  # B is lost for the last 4 frames
    m = evaluate_sequence(gt, pred)
    # MOTA = 1 - 4 / 20; recall = 16 / 20; precision stays 1; IDF1 = 2 * 16 / (20 + 16)
    assert (m.false_negatives, m.false_positives, m.id_switches) == (4, 0, 0)
    assert m.mota == pytest.approx(0.8)
    assert m.recall == pytest.approx(0.8) and m.precision == pytest.approx(1.0)
    assert m.idf1 == pytest.approx(32 / 36)


def test_frames_the_tracker_never_saw_count_as_misses_only_when_scored():
    gt = two_people()
    pred = two_people(frames=range(5))
    assert evaluate_sequence(gt, pred, frames=range(5)).mota == pytest.approx(1.0)
    assert evaluate_sequence(gt, pred, frames=range(FRAMES)).recall == pytest.approx(0.5)


def test_id_switch_is_counted_each_time_the_id_changes():
    gt = two_people()
    pred = two_people(ids_a=(1, 1, 3, 3, 1, 1, 4, 4, 4, 4))  # 1 -> 3 -> 1 -> 4: three switches
    assert evaluate_sequence(gt, pred).id_switches == 3


def test_one_metre_map_offset_is_one_metre_of_map_error():
    gt = two_people()
    pred = two_people()
    angle = np.linspace(0, 2 * np.pi, len(pred), endpoint=False)  # 1 m in a different direction each box
    shifted = MotBoxes.create(pred.frame, pred.ids, pred.xyxy,
                              map_xy=pred.map_xy + np.column_stack([np.cos(angle), np.sin(angle)]))
    distances = map_errors(gt, shifted)
    assert len(distances) == len(gt)
    error = MapError.of(distances)
    assert error.median_m == pytest.approx(1.0) and error.p90_m == pytest.approx(1.0) and error.pairs == 20


def test_map_error_skips_unknown_positions_and_unmatched_boxes():
    gt = two_people()
    pred = two_people(ids_b=(None,) * FRAMES)  # only A is tracked
    unknown = MotBoxes.create(pred.frame, pred.ids, pred.xyxy)  # no map positions
    assert len(map_errors(gt, pred)) == FRAMES
    assert len(map_errors(gt, unknown)) == 0
    assert MapError.of(map_errors(gt, unknown)).pairs == 0


def _tracks(camera: str, boxes: MotBoxes, global_id: int) -> pd.DataFrame:
    return pd.DataFrame({"camera": camera, "global_frame": boxes.frame, "x1": boxes.xyxy[:, 0],
                         "y1": boxes.xyxy[:, 1], "x2": boxes.xyxy[:, 2], "y2": boxes.xyxy[:, 3],
                         "conf": 0.9, "map_x": boxes.map_xy[:, 0], "map_y": boxes.map_xy[:, 1],
                         "tracklet_id": f"{camera}-t1", "global_id": global_id})


def _one_person_in_two_cameras(second_global_id: int) -> EnvironmentEvaluation:
    person = MotBoxes.create(range(FRAMES), [7] * FRAMES, [_walk(PERSON_A, f) for f in range(FRAMES)],
                             map_xy=[(f * 0.1, 2.0) for f in range(FRAMES)])
    truth = {"cam1": person, "cam2": person}
    tracks = pd.concat([_tracks("cam1", person, 5), _tracks("cam2", person, second_global_id)])
    return evaluate_environment(truth, tracks, {"cam1": np.arange(FRAMES), "cam2": np.arange(FRAMES)})


def test_same_person_same_global_id_in_two_cameras_is_perfect_cross_camera():
    evaluation = _one_person_in_two_cameras(second_global_id=5)
    assert evaluation.cross_camera.idf1 == pytest.approx(1.0)
    assert evaluation.cross_camera.gt_boxes == 2 * FRAMES and evaluation.cross_camera.frames == 2 * FRAMES
    assert all(m.idf1 == pytest.approx(1.0) for m in evaluation.per_camera.values())
    assert evaluation.map_error["cam1"].median_m == pytest.approx(0.0)


def test_a_different_global_id_in_the_second_camera_halves_cross_camera_idf1():
    evaluation = _one_person_in_two_cameras(second_global_id=6)
    # one GT id (7) over 20 boxes; predicted ids 5 (cam1, 10 boxes) and 6 (cam2, 10 boxes).
    # 7 matches one of them: IDTP = 10, IDF1 = 2 * 10 / (20 + 20) = 0.5
    assert evaluation.cross_camera.idf1 == pytest.approx(2 * FRAMES / (2 * FRAMES + 2 * FRAMES))
    assert evaluation.cross_camera.idf1 == pytest.approx(0.5)
    # each camera on its own is still perfect: the mistake is only visible across cameras
    assert [m.idf1 for m in evaluation.per_camera.values()] == [pytest.approx(1.0)] * 2
    assert [m.mota for m in evaluation.tracker_ids.values()] == [pytest.approx(1.0)] * 2


def test_evaluate_cross_camera_directly_matches_hand_count():
    person = MotBoxes.create(range(4), [1] * 4, [PERSON_A] * 4)
    other = MotBoxes.create(range(4), [2] * 4, [PERSON_A] * 4)
    m = evaluate_cross_camera({"a": person, "b": person}, {"a": person, "b": other})
    # IDTP = 4 of 8 GT and 8 predicted boxes: IDF1 = 8 / 16. The cameras are one concatenated sequence,
    # so the id change at the hand-over from camera a to b is one ID switch: MOTA = 1 - 1 / 8
    assert m.idf1 == pytest.approx(0.5)
    assert m.id_switches == 1 and m.mota == pytest.approx(1 - 1 / 8)
    same = evaluate_cross_camera({"a": person, "b": person}, {"a": person, "b": person})
    assert same.id_switches == 0 and same.mota == pytest.approx(1.0) and same.idf1 == pytest.approx(1.0)


def test_environment_records_and_table_name_every_scope():
    evaluation = _one_person_in_two_cameras(second_global_id=6)
    records = evaluation_records(evaluation)
    assert [(r["scope"], r["camera"]) for r in records] == [
        ("global", "cam1"), ("global", "cam2"), ("tracker", "cam1"), ("tracker", "cam2"), ("cross_camera", "all")]
    assert records[0]["map_error_median_m"] == pytest.approx(0.0) and "map_error_median_m" not in records[2]
    assert set().union(*records) <= set(TRACKING_EVALUATION.names)  # the rows of the tracking_evaluation table
    table = evaluation_table(evaluation)
    assert "| cam1 (global ids) |" in table and "all cameras (cross-camera)" in table and "| 50.0 |" in table


def test_metrics_table_prints_percent_and_map_error():
    m = evaluate_sequence(two_people(), two_people(ids_a=(1,) * 5 + (3,) * 5))
    table = metrics_table({"seq": m}, {"seq": MapError(0.25, 0.5, 20)})
    row = table.splitlines()[2].split(" | ")
    assert row[2:4] == ["95.0", "75.0"] and row[-2:] == ["0.25", "0.50 |"]


def test_mot_text_round_trip(tmp_path):
    boxes = MotBoxes.create([0, 0, 4], [3, 1, 3],
                            [[10.5, 20.25, 30.5, 80.75], [1, 2, 3, 4], [11.5, 21.25, 31.5, 81.75]],
                            conf=[0.5, 1.0, 0.75], map_xy=[[1.25, -2.5], [np.nan, np.nan], [1.5, -2.25]])
    path = boxes.write_mot(tmp_path / "seq" / "gt.txt")
    lines = path.read_text().splitlines()
    # sorted by frame then id; frames 1-based; left, top, width, height; world x, y in columns 8-9
    assert lines[0].split(",")[:6] == ["1", "1", "1.00", "2.00", "2.00", "2.00"]
    assert lines[0].split(",")[7:9] == ["-1", "-1"]  # no map position
    assert lines[1].split(",")[:2] == ["1", "3"] and lines[1].split(",")[7:9] == ["1.250", "-2.500"]
    assert lines[2].split(",")[0] == "5"
    back = MotBoxes.read_mot(path)
    order = np.lexsort((boxes.ids, boxes.frame))
    np.testing.assert_array_equal(back.frame, boxes.frame[order])
    np.testing.assert_array_equal(back.ids, boxes.ids[order])
    np.testing.assert_allclose(back.xyxy, boxes.xyxy[order])
    np.testing.assert_allclose(back.conf, boxes.conf[order])
    np.testing.assert_allclose(back.map_xy, boxes.map_xy[order])  # NaN stays NaN


def test_reads_plain_six_column_mot_text():
    boxes = MotBoxes.parse_mot("2,5,10,20,30,40\n\n3,5,11,20,30,40\n")
    np.testing.assert_array_equal(boxes.frame, [1, 2])
    np.testing.assert_allclose(boxes.xyxy[0], [10, 20, 40, 60])
    assert np.isnan(boxes.map_xy).all() and (boxes.conf == 1).all()
    assert len(MotBoxes.parse_mot("")) == 0


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(GroundTruthError, match=r"gt\.txt does not exist: give a MOTChallenge text file"):
        MotBoxes.read_mot(tmp_path / "gt.txt")


def test_too_few_columns_is_a_clear_error(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("1,2,10,20,30\n")
    with pytest.raises(GroundTruthError, match=r"short\.txt has 5 columns; MOTChallenge rows need at least 6"):
        MotBoxes.read_mot(path)


def test_frame_zero_is_a_clear_error():
    with pytest.raises(GroundTruthError, match="frame numbers below 1: MOTChallenge frames are 1-based"):
        MotBoxes.parse_mot("0,1,10,20,30,40\n", source="zero.txt")


def test_text_that_is_not_numbers_is_a_clear_error():
    with pytest.raises(GroundTruthError, match="not MOTChallenge text"):
        MotBoxes.parse_mot("frame,id,left,top,width,height\n1,1,1,1,1,1\n")
