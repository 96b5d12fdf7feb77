import json

import numpy as np
import pytest

from spoton.geometry import CalibrationError, Homography, apply_homography, foot_points, homography_scale

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


def test_foot_point_on_the_axis_through_the_vertical_vanishing_point():
    # a person leaning in the image: feet at (100, 300), head at (130, 200), verticals meet at (10, 600)
    feet, head, vanishing = np.array([100.0, 300.0]), np.array([130.0, 200.0]), np.array([10.0, 600.0])
    assert np.cross(head - feet, vanishing - feet) == 0  # the head is on the axis through the feet
    box = [[feet[0] - 8, head[1], head[0] + 8, feet[1]]]  # upright box around the leaning body
    np.testing.assert_allclose(foot_points(box, vanishing), [[100.0, 300.0]], atol=0.5)
    assert foot_points(box)[0, 0] == 115.0  # the bottom-centre sits under the middle of the lean
    # verticals straight down the image: the bottom-centre; level with the centre: the centre too
    np.testing.assert_allclose(foot_points(box, [115.0, 1e9]), foot_points(box))
    np.testing.assert_allclose(foot_points(box, [500.0, 250.0]), foot_points(box))


def test_homography_scale_is_the_size_of_its_jacobian():
    points = np.array([[100.0, 200.0], [500.0, 400.0]])
    step = 1e-4
    du = (apply_homography(TRUE_H, points + [step, 0]) - apply_homography(TRUE_H, points)) / step
    dv = (apply_homography(TRUE_H, points + [0, step]) - apply_homography(TRUE_H, points)) / step
    np.testing.assert_allclose(homography_scale(TRUE_H, points), np.sqrt((du**2).sum(1) + (dv**2).sum(1)), rtol=1e-4)
    np.testing.assert_allclose(homography_scale(np.diag([0.01, 0.02, 1.0]), [[3.0, 4.0]]), [np.sqrt(0.01**2 + 0.02**2)])
