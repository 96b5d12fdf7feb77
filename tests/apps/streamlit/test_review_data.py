"""The app's drawings, on the committed sample environment: right place, right colour, +Y up."""
import cv2
import numpy as np
import pandas as pd
import pytest

import review_data as rd
from spoton.annotate import track_color
from spoton.sample.builder import DEFAULT_CONFIG_DIR, load_sample_environment
from spoton.storage.store import LocalStore


@pytest.fixture(scope="module")
def env():
    return rd.SiteMap.from_store(LocalStore(DEFAULT_CONFIG_DIR.parent), load_sample_environment())


def test_trajectory_is_drawn_in_its_identity_colour_where_the_floor_plan_puts_it(env):
    xmin, ymin, xmax, ymax = env.floor_plan.bounds_m
    walk = pd.DataFrame({"global_id": 7, "ts": np.arange(20) / 7.0,
                         "map_x": np.linspace(xmin + 3, xmin + 9, 20), "map_y": np.linspace(ymax - 3, ymax - 3, 20)})
    image = rd.draw_trajectories(env, walk)
    plan = rd.floor_plan_image(env)
    assert image.shape == plan.shape
    changed = np.any(image != plan, axis=2)
    rows, cols = np.nonzero(changed)
    middle = env.floor_plan.to_pixels(np.array([[xmin + 6, ymax - 3]]))[0]
    assert tuple(image[int(round(middle[1])), int(round(middle[0]))]) == track_color(7)
    # ymax - 3 m is 3 m below the top edge: +Y is up on the plan
    assert abs(np.median(rows) - 3 * env.floor_plan.pixels_per_metre) <= 2
    assert abs(cols.min() - 3 * env.floor_plan.pixels_per_metre) <= 4


def test_trajectory_gap_starts_a_new_stroke(env):
    xmin, _, _, ymax = env.floor_plan.bounds_m
    hop = pd.DataFrame({"global_id": 3, "ts": [0.0, 0.15, 5.0, 5.15],
                        "map_x": [xmin + 2, xmin + 2.5, xmin + 12, xmin + 12.5], "map_y": [ymax - 2] * 4})
    image = rd.draw_trajectories(env, hop)
    halfway = env.floor_plan.to_pixels(np.array([[xmin + 7, ymax - 2]]))[0].round().astype(int)
    assert tuple(image[halfway[1], halfway[0]]) == tuple(rd.floor_plan_image(env)[halfway[1], halfway[0]])


def test_heatmap_hottest_cell_is_red_at_its_place_and_cold_cells_blue(env):
    xmin, ymin, xmax, ymax = env.floor_plan.bounds_m
    cells = pd.DataFrame({"cell_ix": [4, 10], "cell_iy": [30, 30], "x_m": [xmin + 2.25, xmin + 5.25],
                          "y_m": [ymin + 15.25, ymin + 15.25], "seconds": [40.0, 1.0], "people": [3, 1]})
    assert rd.heatmap_cell_m(env, cells) == pytest.approx(0.5)
    image = rd.draw_heatmap(env, cells)
    hot = env.floor_plan.to_pixels(np.array([[xmin + 2.25, ymin + 15.25]]))[0].round().astype(int)
    cold = env.floor_plan.to_pixels(np.array([[xmin + 5.25, ymin + 15.25]]))[0].round().astype(int)
    b, g, r = image[hot[1], hot[0]].astype(int)
    assert r > 100 and r > 2 * b, "peak cell in the warm end of turbo"
    b, g, r = image[cold[1], cold[0]].astype(int)
    assert b > r, "a cell with 1/40 of the peak is in the cold end"
    changed = np.any(image != rd.floor_plan_image(env), axis=2)
    side = env.floor_plan.pixels_per_metre * 0.5
    assert changed.sum() == pytest.approx(2 * side * side, rel=0.1), "two 0.5 m cells painted, nothing else"


def test_frame_boxes_are_tagged_with_global_and_track_ids():
    image = np.full((240, 320, 3), 90, np.uint8)
    boxes = pd.DataFrame({"track_id": [4, 5], "x1": [20.0, 200.0], "y1": [40.0, 60.0], "x2": [80.0, 260.0],
                          "y2": [200.0, 220.0], "conf": [0.9, 0.8], "global_id": pd.array([12, None], "Int64")})
    drawn = rd.annotated_frame(image, boxes)
    assert tuple(drawn[120, 20]) == track_color(12), "left edge of the first box in its identity's colour"
    assert np.any(drawn[:, 195:265] != 90), "a box without identity is still drawn"


def test_missing_outputs_name_the_fix(tmp_path):
    with pytest.raises(rd.ReviewDataError, match="make demo"):
        rd.ReviewPaths.from_var(tmp_path).check()


def _deployment(tmp_path, head=None):
    """A deployment folder with three tracklets' embeddings and identities (and the head's record)."""
    import pyarrow as pa

    from spoton.storage.catalog import build_catalog
    from spoton.storage.lake import ParquetLake

    paths = rd.ReviewPaths.from_var(tmp_path)
    lake = ParquetLake(LocalStore(paths.lake))
    vectors = [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0]]
    lake.write("tracklet_embeddings", pa.table({"tracklet_id": ["a", "b", "c"],
                                                "embedding": pa.array(vectors, pa.list_(pa.float32()))}), "env")
    lake.write("global_identities", pa.table({"tracklet_id": ["a", "b", "c"], "global_id": [1, 2, 3],
                                              "start_ts": [0.0, 1.0, 2.0]}), "env")
    if head is not None:
        key = "env/models/appearance_adaptation/v1.npz"
        LocalStore(paths.store).write_bytes(key, head.to_bytes())
        lake.write("appearance_adaptation", pa.table({"version": ["v1"], "model_key": [key]}), "env")
    build_catalog(lake, paths.catalog)
    return paths


def test_search_uses_the_adapted_head_where_the_environment_has_one(tmp_path):
    from spoton.identity.adaptation import AdaptationParams, ProjectionHead

    plain = rd.search_index(_deployment(tmp_path / "plain"), "env")
    assert plain.vectors.shape == (3, 3) and plain.nearest_identities("a", k=1)[0].global_id == 2
    # a head that keeps only the second axis: a and b (0 and 0.1 there) stop looking alike, b and c agree
    head = ProjectionHead(np.zeros(3), np.array([[0.0], [1.0], [0.0]]), AdaptationParams(dim=1), "x")
    adapted = rd.search_index(_deployment(tmp_path / "adapted", head), "env")
    assert adapted.vectors.shape == (3, 1)
    assert adapted.nearest_identities("b", k=1)[0].global_id == 3
