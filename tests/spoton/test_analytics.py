"""Floor-plan analytics on hand-made walks whose right answers are known."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from spoton.analytics import (dwell, heatmap, heatmap_image, map_trajectories, occupancy, sample_seconds,
                              with_foot_spread)
from spoton.geometry import Zone
from spoton.storage.schemas import DWELL, HEATMAPS, MAP_TRAJECTORIES, OCCUPANCY

FPS = 7.0
FRAME = 1 / FPS


def _boxes(global_id: int, ts: np.ndarray, xy: np.ndarray, camera: str = "cam1") -> pd.DataFrame:
    return pd.DataFrame({"camera": camera, "segment": "01", "tracklet_id": f"{camera}/01/{global_id}",
                         "global_id": global_id, "ts": ts, "map_x": xy[:, 0], "map_y": xy[:, 1],
                         "conf": 0.9, "x1": 0.0, "y1": 0.0, "x2": 40.0, "y2": 100.0})


def _walk(start, velocity, seconds: float, t0: float = 0.0):
    ts = t0 + np.arange(0, seconds, FRAME)
    return ts, np.asarray(start, float) + np.outer(ts - t0, velocity)


def _trajectory(global_id: int, ts: np.ndarray, xy: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"global_id": global_id, "ts": ts, "map_x": xy[:, 0], "map_y": xy[:, 1],
                         "n_cameras": 1, "speed_mps": np.nan})


def test_two_cameras_seeing_one_person_at_offset_positions_fuse_to_the_midpoint():
    ts, xy = _walk((2.0, 3.0), (1.0, 0.0), 5.0)
    ts2, xy2 = _walk((2.03, 3.0), (1.0, 0.0), 5.0, t0=0.03)  # cam2's clock is 0.2 frame late
    boxes = pd.concat([_boxes(1, ts, xy + [0.0, 0.4], "cam1"), _boxes(1, ts2, xy2 - [0.0, 0.4], "cam2")])
    out = map_trajectories(boxes)
    assert list(out.columns) == ["global_id", "ts", "map_x", "map_y", "n_cameras", "speed_mps"]
    assert len(out) == len(ts) and (out["n_cameras"] == 2).all()
    np.testing.assert_allclose(out["map_y"], 3.0, atol=1e-9)
    np.testing.assert_allclose(out["ts"], ts + 0.015, atol=1e-9)  # fused at the mean instant
    np.testing.assert_allclose(out["map_x"], xy[:, 0] + 0.015, atol=1e-9)
    np.testing.assert_allclose(out["speed_mps"], 1.0, atol=1e-9)


def test_cameras_are_weighted_by_the_inverse_square_of_their_foot_spread():
    ts, xy = _walk((2.0, 3.0), (1.0, 0.0), 3.0)
    near, mid, far = (_boxes(1, ts, xy + [0.0, dy], cam) for dy, cam in ((0.1, "cam1"), (0.0, "cam2"), (-0.6, "cam3")))
    plain = map_trajectories(pd.concat([near, mid, far]))
    np.testing.assert_allclose(plain["map_y"], 3.0, atol=1e-9)  # the plain median: the middle camera
    spread = pd.concat([near.assign(foot_spread_m=0.1), mid.assign(foot_spread_m=0.3), far.assign(foot_spread_m=0.4)])
    np.testing.assert_allclose(map_trajectories(spread)["map_y"], 3.1, atol=1e-9)  # near holds 85% of the weight
    # two cameras: the better one; equal spreads: the plain median (their midpoint)
    pair = pd.concat([near.assign(foot_spread_m=0.1), far.assign(foot_spread_m=0.4)])
    np.testing.assert_allclose(map_trajectories(pair)["map_y"], 3.1, atol=1e-9)
    even = pd.concat([near.assign(foot_spread_m=0.2), far.assign(foot_spread_m=0.2)])
    np.testing.assert_allclose(map_trajectories(even)["map_y"], 2.75, atol=1e-9)
    # a row without a spread weighs the median weight
    unknown = pd.concat([near.assign(foot_spread_m=0.1), mid.assign(foot_spread_m=np.nan), far.assign(foot_spread_m=0.4)])
    np.testing.assert_allclose(map_trajectories(unknown)["map_y"], 3.1, atol=1e-9)


def test_foot_spread_comes_from_each_camera_calibration():
    class Spec:  # a camera whose floor metres per box height grow with the box's bottom row
        def foot_spread_m(self, xyxy):
            return xyxy[:, 3] / 1000.0

    boxes = pd.concat([_boxes(1, np.zeros(2), np.zeros((2, 2)), "cam1"), _boxes(2, np.zeros(1), np.zeros((1, 2)), "cam9")])
    out = with_foot_spread(boxes.assign(y2=[100.0, 200.0, 300.0]), {"cam1": Spec()})
    np.testing.assert_allclose(out["foot_spread_m"], [0.1, 0.2, np.nan])


def test_smoothing_reduces_jitter_without_lag_on_a_straight_walk():
    rng = np.random.default_rng(0)
    ts, truth = _walk((1.0, 2.0), (1.3, 0.4), 20.0)
    noisy = truth + rng.normal(0, 0.2, truth.shape)
    out = map_trajectories(_boxes(1, ts, noisy))
    smooth = out[["map_x", "map_y"]].to_numpy()
    raw_error, smooth_error = noisy - truth, smooth - truth
    print(f"jitter std raw {raw_error.std():.3f} m -> smoothed {smooth_error.std():.3f} m")
    assert smooth_error.std() < 0.5 * raw_error.std()
    direction = np.array([1.3, 0.4]) / np.hypot(1.3, 0.4)
    along = smooth_error @ direction
    assert abs(along.mean()) < 0.02  # no lag overall ...
    assert abs(along[:4].mean()) < 0.15 and abs(along[-4:].mean()) < 0.15  # ... nor at the ends
    assert abs(out["speed_mps"].median() - np.hypot(1.3, 0.4)) < 0.1


def test_smoothing_is_exact_on_a_line_with_missing_frames():
    ts, xy = _walk((1.0, 1.0), (1.3, -0.5), 10.0)
    keep = (np.arange(len(ts)) % 3 != 1) & ~((ts > 4.0) & (ts < 4.8))  # dropped frames, a 0.8 s hole
    out = map_trajectories(_boxes(1, ts[keep], xy[keep]))
    np.testing.assert_allclose(out[["map_x", "map_y"]], xy[keep], atol=1e-9)
    np.testing.assert_allclose(out["speed_mps"], np.hypot(1.3, 0.5), atol=1e-9)


def test_smoothing_does_not_reach_across_gaps():
    ts_a, xy_a = _walk((0.0, 0.0), (0.0, 0.0), 5.0)
    ts_b, xy_b = _walk((5.0, 0.0), (0.0, 0.0), 5.0, t0=7.0)  # unseen 2 s, then 5 m away
    out = map_trajectories(_boxes(1, np.r_[ts_a, ts_b], np.r_[xy_a, xy_b]))
    np.testing.assert_allclose(out["map_x"], np.r_[xy_a[:, 0], xy_b[:, 0]], atol=1e-9)
    np.testing.assert_allclose(out["speed_mps"], 0.0, atol=1e-9)


def test_lone_sample_has_unknown_speed_and_missing_map_positions_are_dropped():
    boxes = pd.concat([_boxes(1, np.array([1.0]), np.array([[2.0, 2.0]])),
                       _boxes(2, np.array([1.0, 2.0]), np.array([[np.nan, np.nan], [3.0, 3.0]]))])
    out = map_trajectories(boxes)
    assert out["global_id"].tolist() == [1, 2] and out["speed_mps"].isna().all()
    assert map_trajectories(boxes.iloc[:0]).columns.tolist() == out.columns.tolist()


def test_standing_still_ten_seconds_is_ten_person_seconds_in_one_cell():
    ts = np.arange(0, 10, FRAME)
    still = _trajectory(1, ts, np.tile([3.2, 1.7], (len(ts), 1)))
    passer = _trajectory(2, *_walk((0.1, 4.2), (1.0, 0.0), 6.0))
    out = heatmap(pd.concat([still, passer]), extent_m=(0, 0, 8, 6), cell_m=0.5)
    assert list(out.columns) == ["cell_ix", "cell_iy", "x_m", "y_m", "seconds", "people"]
    cell = out[(out["cell_ix"] == 6) & (out["cell_iy"] == 3)].iloc[0]
    assert (cell["x_m"], cell["y_m"]) == (3.25, 1.75)
    assert cell["seconds"] == pytest.approx(10.0, abs=FRAME) and cell["people"] == 1
    assert out["seconds"].sum() == pytest.approx(16.0, abs=2 * FRAME)
    assert out[out["cell_iy"] == 8]["people"].eq(1).all() and (out["cell_iy"] == 8).sum() == 12


def test_gaps_are_capped_not_counted_as_presence():
    ts = np.r_[np.arange(0, 2, FRAME), np.arange(30, 32, FRAME)]  # unseen for 28 s in between
    traj = _trajectory(1, ts, np.tile([1.0, 1.0], (len(ts), 1)))
    assert sample_seconds(traj).sum() == pytest.approx(4.0, abs=FRAME)
    shuffled = traj.sample(frac=1.0, random_state=0)
    np.testing.assert_allclose(sample_seconds(shuffled), sample_seconds(traj)[shuffled.index])


def test_heatmap_image_is_a_png_with_y_growing_downwards_and_a_legend():
    ts = np.arange(0, 10, FRAME)
    traj = _trajectory(1, ts, np.tile([0.5, 0.5], (len(ts), 1)))  # near (xmin, ymin)
    extent = (0.0, 0.0, 8.0, 4.0)
    table = heatmap(traj, extent_m=extent, cell_m=1.0)
    image = cv2.imdecode(np.frombuffer(heatmap_image(table, extent, 1.0, width_px=400), np.uint8),
                         cv2.IMREAD_COLOR)
    assert image.shape[0] == 200 and image.shape[1] > 400  # 2:1 floor, legend on the right
    hot, cold = image[25, 25], image[175, 375]
    assert np.abs(hot.astype(int) - cold.astype(int)).sum() > 100  # top-left cell is the visited one
    plan = np.zeros((100, 200, 3), np.uint8)
    plan[:, :, 1] = 200  # a green floor plan
    ok, png = cv2.imencode(".png", plan)
    over_plan = heatmap_image(table, extent, 1.0, png.tobytes(), width_px=400)
    over_plan = cv2.imdecode(np.frombuffer(over_plan, np.uint8), cv2.IMREAD_COLOR)
    assert tuple(over_plan[175, 375]) == (0, 200, 0)  # unvisited cells show the plan
    with pytest.raises(ValueError, match="decodable"):
        heatmap_image(table, extent, 1.0, b"not an image")
    map_like = cv2.imdecode(np.frombuffer(heatmap_image(table, extent, 1.0, width_px=400, y_up=True), np.uint8),
                            cv2.IMREAD_COLOR)
    assert np.abs(map_like[175, 25].astype(int) - map_like[25, 25].astype(int)).sum() > 100  # now bottom-left
    assert (map_like[175, 25] == image[25, 25]).all()


def test_zone_from_dict_and_point_in_polygon_on_a_concave_shape():
    l_shape = Zone.from_dict({"name": "L", "polygon_m": [[0, 0], [4, 0], [4, 1], [1, 1], [1, 3], [0, 3]]})
    inside = l_shape.contains(np.array([[0.5, 0.5], [3.5, 0.5], [0.5, 2.5], [2.0, 2.0], [5.0, 0.5]]))
    assert inside.tolist() == [True, True, True, False, False]
    with pytest.raises(ValueError, match="polygon must be"):
        Zone("bad", np.array([[0, 0], [1, 1]]))


def test_occupancy_counts_people_and_time_averaged_presence():
    zone_a = Zone("a", np.array([[0, 0], [4, 0], [4, 4], [0, 4]]))
    zone_b = Zone("b", np.array([[10, 10], [12, 10], [12, 12], [10, 12]]))
    one = _trajectory(1, np.arange(0, 10, FRAME), np.full((70, 2), 2.0))  # in a for 0-10 s
    two_ts = np.arange(5, 20, FRAME)
    two = _trajectory(2, two_ts, np.full((len(two_ts), 2), 3.0))  # in a for 5-20 s
    out = occupancy(pd.concat([one, two]), [zone_a, zone_b], bucket_s=10.0)
    assert list(out.columns) == ["zone", "t_start", "t_end", "people", "mean_people"]
    a = out[out["zone"] == "a"].set_index("t_start")
    assert a.loc[0.0, "people"] == 2 and a.loc[0.0, "mean_people"] == pytest.approx(1.5, abs=0.02)
    assert a.loc[10.0, "people"] == 1 and a.loc[10.0, "mean_people"] == pytest.approx(1.0, abs=0.02)
    b = out[out["zone"] == "b"]
    assert b["t_start"].tolist() == [0.0, 10.0]
    assert b["people"].eq(0).all() and b["mean_people"].eq(0).all()


def test_dwell_of_a_walk_across_a_zone_is_width_over_speed():
    zone = Zone("aisle", np.array([[3, 0], [7, 0], [7, 5], [3, 5]]))  # 4 m wide
    ts, xy = _walk((0.13, 2.0), (1.3, 0.0), 8.0, t0=0.05)
    out = dwell(_trajectory(7, ts, xy), [zone])
    assert list(out.columns) == ["global_id", "zone", "enter_ts", "exit_ts", "seconds"]
    assert len(out) == 1 and out.loc[0, "global_id"] == 7 and out.loc[0, "zone"] == "aisle"
    assert out.loc[0, "seconds"] == pytest.approx(4.0 / 1.3, abs=FRAME)
    assert out.loc[0, "enter_ts"] == pytest.approx(0.05 + (3 - 0.13) / 1.3, abs=FRAME)


def test_dwell_splits_visits_on_leaving_or_long_gaps():
    zone = Zone("z", np.array([[0, 0], [2, 0], [2, 2], [0, 2]]))
    inside, outside = np.array([1.0, 1.0]), np.array([5.0, 5.0])
    parts = [(0, 3, inside), (3, 4, outside), (4, 6, inside),  # leaves for 1 s: two visits
             (7.5, 9, inside),                                 # unseen 1.5 s <= 2 s: same visit
             (12, 14, inside)]                                 # unseen 3 s > 2 s: a new visit
    ts = np.concatenate([np.arange(a, b, FRAME) for a, b, _ in parts])
    xy = np.concatenate([np.tile(p, (len(np.arange(a, b, FRAME)), 1)) for a, b, p in parts])
    out = dwell(_trajectory(1, ts, xy), [zone], max_gap_s=2.0)
    np.testing.assert_allclose(out["enter_ts"], [0, 4, 12], atol=1e-9)
    np.testing.assert_allclose(out["exit_ts"], [3, 9, 14], atol=FRAME)
    np.testing.assert_allclose(out["seconds"], [3, 5, 2], atol=FRAME)


def test_end_to_end_boxes_to_dwell_and_heatmap():
    ts, xy = _walk((0.5, 1.0), (1.3, 0.0), 6.0)
    boxes = pd.concat([_boxes(1, ts, xy + 0.1, "cam1"), _boxes(1, ts + 0.02, xy - 0.1, "cam2")])
    traj = map_trajectories(boxes)
    zone = Zone("left", np.array([[0, 0], [4, 0], [4, 2], [0, 2]]))
    assert dwell(traj, [zone])["seconds"].iloc[0] == pytest.approx(3.5 / 1.3, abs=FRAME)
    assert heatmap(traj, extent_m=(0, 0, 10, 2))["seconds"].sum() == pytest.approx(6.0, abs=FRAME)


def _contract_dtypes(contract) -> dict[str, str]:
    return contract.empty_frame().dtypes.astype(str).to_dict()


def test_empty_trajectories_give_empty_tables_of_the_contract_types():
    empty = _trajectory(1, np.array([]), np.empty((0, 2)))
    zone = Zone("z", np.array([[0, 0], [2, 0], [2, 2], [0, 2]]))
    cells = heatmap(empty, extent_m=(0, 0, 4, 4))
    assert cells.empty and cells.dtypes.astype(str).to_dict() == _contract_dtypes(HEATMAPS)
    for table, contract in ((occupancy(empty, [zone]), OCCUPANCY), (dwell(empty, [zone]), DWELL),
                            (occupancy(_trajectory(1, np.array([1.0]), np.ones((1, 2))), []), OCCUPANCY)):
        assert table.empty and table.dtypes.astype(str).to_dict() == _contract_dtypes(contract)


def test_a_single_box_is_one_sample_of_unknown_speed_that_accounts_for_no_time():
    traj = map_trajectories(_boxes(4, np.array([2.0]), np.array([[1.2, 1.3]])))
    assert traj.dtypes.astype(str).to_dict() == _contract_dtypes(MAP_TRAJECTORIES)
    assert traj[["global_id", "ts", "map_x", "map_y", "n_cameras"]].values.tolist() == [[4, 2.0, 1.2, 1.3, 1]]
    assert np.isnan(traj.loc[0, "speed_mps"])
    cells = heatmap(traj, extent_m=(0, 0, 4, 4), cell_m=1.0)
    assert cells.dtypes.astype(str).to_dict() == _contract_dtypes(HEATMAPS)
    assert cells[["cell_ix", "cell_iy", "seconds", "people"]].values.tolist() == [[1, 1, 0.0, 1]]
    zone = Zone("z", np.array([[0, 0], [2, 0], [2, 2], [0, 2]]))
    assert occupancy(traj, [zone])[["t_start", "people", "mean_people"]].values.tolist() == [[0.0, 1, 0.0]]
    visits = dwell(traj, [zone])
    assert visits.dtypes.astype(str).to_dict() == _contract_dtypes(DWELL)
    assert visits[["global_id", "zone", "enter_ts", "seconds"]].values.tolist() == [[4, "z", 2.0, 0.0]]


def test_boxes_without_identity_or_position_are_dropped_and_ids_come_back_as_integers():
    ts, xy = _walk((1.0, 1.0), (1.0, 0.0), 2.0)
    boxes = _boxes(5, ts, xy).astype({"global_id": float})  # a left join leaves float ids and NaN
    boxes.loc[3, "global_id"] = np.nan
    boxes.loc[5, "map_y"] = np.nan
    traj = map_trajectories(boxes)
    assert traj["global_id"].dtype == np.int64 and traj["n_cameras"].dtype == np.int64
    np.testing.assert_allclose(traj["ts"], np.delete(ts, [3, 5]))
    np.testing.assert_allclose(traj["map_x"], np.delete(xy[:, 0], [3, 5]), atol=1e-9)


def test_a_sample_of_unknown_position_lies_in_no_cell_and_no_zone_but_ends_the_step_before_it():
    traj = _trajectory(1, np.array([0.0, 0.5, 1.0]), np.array([[1.0, 1.0], [np.nan, np.nan], [1.0, 1.0]]))
    cells = heatmap(traj, extent_m=(0, 0, 4, 4), cell_m=2.0)
    assert cells[["cell_ix", "cell_iy", "seconds", "people"]].values.tolist() == [[0, 0, 1.0, 1]]
    zone = Zone("z", np.array([[0, 0], [2, 0], [2, 2], [0, 2]]))
    assert occupancy(traj, [zone])["mean_people"].tolist() == [0.1]
    assert dwell(traj, [zone])[["enter_ts", "exit_ts"]].values.tolist() == [[0.0, 0.5], [1.0, 1.5]]


def test_zones_keep_their_order_in_occupancy_and_visits_starting_together_sort_by_zone_name():
    traj = _trajectory(1, np.arange(0, 2, FRAME), np.full((14, 2), 1.0))
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]])
    zones = [Zone("b", square), Zone("a", square)]
    assert occupancy(traj, zones)["zone"].tolist() == ["b", "a"]
    assert dwell(traj, zones)["zone"].tolist() == ["a", "b"]
