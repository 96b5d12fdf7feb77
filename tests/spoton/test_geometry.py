import json

import numpy as np
import pytest

from spoton.geometry import CalibrationError, Homography, apply_homography, foot_points

TRUE_H = np.array([[0.02, 0.001, -3.0], [0.0005, 0.05, -8.0], [0.00002, 0.0009, 1.0]])


def _pairs(n=12, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.uniform([0, 100], [768, 576], size=(n, 2))
    world = apply_homography(TRUE_H, image) + rng.normal(0, noise, size=(n, 2))
    return image, world


def test_round_trip_pixels_to_metres_and_back():
    image, world = _pairs()
    h = Homography.from_point_pairs(image, world)
    assert h.reprojection_error_m < 1e-6
    grid = np.stack(np.meshgrid(np.linspace(0, 768, 7), np.linspace(150, 576, 5)), -1).reshape(-1, 2)
    np.testing.assert_allclose(h.to_image(h.to_map(grid)), grid, atol=1e-6)


def test_reprojection_error_reports_noise_and_ransac_drops_outliers():
    image, world = _pairs(n=30, noise=0.05)
    world[3] += 25.0  # a mis-clicked point 25 m away
    h = Homography.from_point_pairs(image, world, ransac_threshold_m=0.5)
    assert not h.inliers[3]
    assert 0.01 < h.reprojection_error_m < 0.2


def test_bad_point_pairs_name_the_fix(tmp_path):
    with pytest.raises(CalibrationError, match="at least 4 point pairs"):
        Homography.from_point_pairs([[0, 0]] * 3, [[0, 0]] * 3)
    with pytest.raises(CalibrationError, match="one map point"):
        Homography.from_point_pairs([[0, 0]] * 5, [[0, 0]] * 4)
    bad = tmp_path / "cam.json"
    bad.write_text(json.dumps({"image_points": [[0, 0]] * 4}))
    with pytest.raises(CalibrationError, match="lacks 'map_points'"):
        Homography.from_json(bad)


def test_foot_point_is_bottom_centre():
    np.testing.assert_allclose(foot_points([[10, 20, 30, 100]]), [[20, 100]])
