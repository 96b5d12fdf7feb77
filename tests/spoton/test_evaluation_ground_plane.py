"""Ground-plane scoring (map positions against true foot points within a radius) on hand-made
walks whose right answers are counted here by hand."""
import numpy as np
import pandas as pd
import pytest

from spoton.evaluation.metrics import evaluate_ground_plane
from spoton.evaluation.mot import MotBoxes
from spoton.evaluation.multi_camera import evaluate_environment, evaluate_floor, floor_truth
from spoton.evaluation.report import evaluation_records, evaluation_table
from spoton.storage.schemas import TRACKING_EVALUATION

FRAMES = 10
FPS = 7.0


def floor(rows) -> MotBoxes:
    """Floor points from (frame, id, x, y) rows; boxes are irrelevant on the floor."""
    frame, ids, x, y = (np.array(c) for c in zip(*rows))
    return MotBoxes.create(frame, ids, np.zeros((len(frame), 4)), map_xy=np.column_stack([x, y]))


def two_walkers(id_a=lambda f: 1, id_b=lambda f: 2, offset_m=0.0) -> MotBoxes:
    """A walks along y = 0, B along y = 5 (never within a metre of each other)."""
    return floor([(f, id_a(f), 0.5 * f + offset_m, 0.0) for f in range(FRAMES)]
                 + [(f, id_b(f), 0.5 * f, 5.0) for f in range(FRAMES)])


def test_a_perfect_trajectory_scores_100():
    m = evaluate_ground_plane(two_walkers(), two_walkers(lambda f: 7, lambda f: 8), radius_m=1.0)
    assert (m.mota, m.idf1, m.precision, m.recall) == (pytest.approx(1.0),) * 4
    assert (m.id_switches, m.false_positives, m.false_negatives, m.gt_boxes) == (0, 0, 0, 2 * FRAMES)


def test_the_radius_decides_a_match():
    # A's estimate is 0.7 m off: a hit within 1 m, a miss and a false positive within 0.5 m
    pred = two_walkers(offset_m=0.7)
    assert evaluate_ground_plane(two_walkers(), pred, radius_m=1.0).precision == pytest.approx(1.0)
    half = evaluate_ground_plane(two_walkers(), pred, radius_m=0.5)
    assert (half.true_positives, half.false_positives, half.false_negatives) == (FRAMES, FRAMES, FRAMES)
    assert half.precision == pytest.approx(0.5) and half.mota == pytest.approx(0.0)


def test_a_phantom_lowers_precision_and_mota_only():
    # a bollard tracked as id 9 at (3, 10), far from both people, in every frame
    phantom = floor([(f, 9, 3.0, 10.0) for f in range(FRAMES)])
    both = MotBoxes.create(*(np.r_[getattr(two_walkers(), k), getattr(phantom, k)]
                             for k in ("frame", "ids", "xyxy", "conf", "map_xy")))
    m = evaluate_ground_plane(two_walkers(), both, radius_m=1.0)
    # 20 true positives, 10 false positives: precision 20 / 30; MOTA 1 - 10 / 20
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(1.0)
    assert m.mota == pytest.approx(0.5) and m.false_positives == FRAMES
    # IDF1 = 2 IDTP / (GT + pred) = 40 / (20 + 30)
    assert m.idf1 == pytest.approx(0.8) and m.id_switches == 0


def test_an_id_swap_counts():
    # from frame 5 the ids swap between the two people
    swapped = two_walkers(lambda f: 1 if f < 5 else 2, lambda f: 2 if f < 5 else 1)
    m = evaluate_ground_plane(two_walkers(), swapped, radius_m=1.0)
    assert m.id_switches == 2 and m.mota == pytest.approx(1 - 2 / 20)
    assert m.idf1 == pytest.approx(0.5) and m.precision == pytest.approx(1.0)


def test_unknown_positions_never_match():
    pred = two_walkers()
    pred.map_xy[:FRAMES] = np.nan
    m = evaluate_ground_plane(two_walkers(), pred, radius_m=1.0)
    assert (m.true_positives, m.false_positives, m.false_negatives) == (FRAMES, FRAMES, FRAMES)


def test_a_non_positive_radius_is_refused():
    with pytest.raises(ValueError, match="radius_m must be a positive distance"):
        evaluate_ground_plane(two_walkers(), two_walkers(), radius_m=0)


def test_floor_truth_counts_a_person_seen_by_two_cameras_once():
    cam1 = floor([(f, 1, 0.5 * f, 0.0) for f in range(FRAMES)])
    cam2 = floor([(f, 1, 0.5 * f, 0.0) for f in range(3, FRAMES)] + [(0, 2, np.nan, np.nan)])
    truth = floor_truth({"cam1": cam1, "cam2": cam2})
    assert len(truth) == FRAMES and set(truth.ids) == {1}


def _trajectories(points: MotBoxes) -> pd.DataFrame:
    return pd.DataFrame({"global_id": points.ids, "ts": points.frame / FPS,
                         "map_x": points.map_xy[:, 0], "map_y": points.map_xy[:, 1]})


def test_evaluate_floor_reads_map_trajectories_on_the_frame_clock():
    truth = {"cam1": two_walkers()}
    figures = evaluate_floor(truth, _trajectories(two_walkers(offset_m=0.7)), FPS, np.arange(FRAMES))
    assert sorted(figures) == [0.5, 1.0]
    assert figures[1.0].mota == pytest.approx(1.0) and figures[0.5].precision == pytest.approx(0.5)
    # frames outside the scored ones are neither misses nor false positives
    few = evaluate_floor(truth, _trajectories(two_walkers()), FPS, np.arange(4))
    assert few[1.0].gt_boxes == 8 and few[1.0].precision == pytest.approx(1.0)


def test_environment_evaluation_reports_the_ground_plane_beside_the_cameras():
    person = MotBoxes.create(range(FRAMES), [7] * FRAMES, [[0.0, 0.0, 20.0, 50.0]] * FRAMES,
                             map_xy=[(f * 0.1, 2.0) for f in range(FRAMES)])
    tracks = pd.DataFrame({"camera": "cam1", "global_frame": person.frame, "x1": 0.0, "y1": 0.0, "x2": 20.0,
                           "y2": 50.0, "conf": 1.0, "map_x": person.map_xy[:, 0], "map_y": person.map_xy[:, 1],
                           "tracklet_id": "cam1/0/1", "global_id": 5})
    phantom = pd.DataFrame({"global_id": 6, "ts": np.arange(FRAMES) / FPS, "map_x": 9.0, "map_y": 9.0})
    trajectories = pd.concat([_trajectories(MotBoxes.create(person.frame, [5] * FRAMES, person.xyxy,
                                                            map_xy=person.map_xy)), phantom])
    evaluation = evaluate_environment({"cam1": person}, tracks, {"cam1": np.arange(FRAMES)}, trajectories, FPS)
    assert evaluation.ground_plane[1.0].precision == pytest.approx(0.5)
    assert evaluation.per_camera["cam1"].precision == pytest.approx(1.0)  # the phantom has no box
    records = evaluation_records(evaluation)
    assert [(r["scope"], r["camera"]) for r in records[-2:]] == [("ground_plane_0.5m", "all"),
                                                                 ("ground_plane_1m", "all")]
    assert set().union(*records) <= set(TRACKING_EVALUATION.names)
    assert "| floor, trajectories within 1 m | " in evaluation_table(evaluation)
