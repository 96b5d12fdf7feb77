"""CameraSpec: map positions of boxes through a camera's calibration."""
import json

import numpy as np
import pytest

from spoton.geometry import Homography
from spoton.perception.processor import CameraSpec


def test_camera_spec_puts_map_positions_on_the_axis_of_its_vanishing_point(tmp_path):
    pairs = {"image_points": [[0, 0], [640, 0], [640, 480], [0, 480], [320, 240]],
             "map_points": [[0, 0], [6.4, 0], [6.4, 4.8], [0, 4.8], [3.2, 2.4]]}  # 1 cm per pixel
    path = tmp_path / "cam.json"
    path.write_text(json.dumps(pairs | {"vertical_vanishing_point": [100.0, 1240.0]}))
    spec = CameraSpec.from_calibration("cam", path)
    box = np.array([[300.0, 140.0, 340.0, 340.0]])  # centre (320, 240): the axis runs 220 px left per 1000 down
    np.testing.assert_allclose(spec.map_positions(box), [[(320 - 22) / 100, 3.4]], atol=1e-6)
    plain = CameraSpec("cam", spec.homography)
    np.testing.assert_allclose(plain.map_positions(box), [[3.2, 3.4]], atol=1e-6)
    assert np.isnan(CameraSpec("cam").map_positions(box)).all()
    with pytest.raises(ValueError, match=r"vertical_vanishing_point must be \[x, y\]"):
        CameraSpec("cam", spec.homography, vertical_vanishing_point=[1.0, np.inf])


def test_foot_spread_is_box_height_times_floor_metres_per_pixel():
    spec = CameraSpec("cam", Homography(np.diag([0.01, 0.02, 1.0]), 0.0, np.ones(4, bool)))
    np.testing.assert_allclose(spec.foot_spread_m(np.array([[0.0, 100.0, 40.0, 300.0]])), [200 * np.hypot(0.01, 0.02)])
    assert np.isnan(CameraSpec("cam").foot_spread_m(np.zeros((1, 4)))).all()
