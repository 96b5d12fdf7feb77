import dataclasses

import numpy as np
import pytest

from spoton.sample.builder import TSAI_XML
from spoton.tsai import TsaiCalibrationError, TsaiCamera

# README check values: world mm on the ground -> pixels
CHECKS_MM = np.array([[-4155.4, -7359.1], [-11306.0, -5599.5], [-9032.3, -12587.0]])
CHECKS_PX = np.array([[513.0, 232.0], [273.0, 306.0], [653.0, 322.0]])


@pytest.fixture(scope="module")
def camera() -> TsaiCamera:
    return TsaiCamera.from_xml(TSAI_XML)


def test_committed_calibration_is_parsed(camera):
    assert "data/calibration" in TSAI_XML.as_posix() and TSAI_XML.is_file()
    assert (camera.width, camera.height) == (768, 576)
    assert camera.kappa1 == pytest.approx(5.1113043639e-03)
    assert camera.sx == pytest.approx(1.0937855397)
    # the camera sits ~7 m above the ground
    assert 5000 < camera.centre_mm[2] < 9000


def test_readme_check_values_within_one_pixel(camera):
    np.testing.assert_allclose(camera.world_to_image(CHECKS_MM), CHECKS_PX, atol=1.0)
    with_z = np.column_stack([CHECKS_MM, np.zeros(3)])
    np.testing.assert_allclose(camera.world_to_image(with_z), CHECKS_PX, atol=1.0)


def test_check_pixels_back_to_ground(camera):
    ground = camera.image_to_ground(CHECKS_PX)
    # 1 px is a few cm at these distances
    assert np.max(np.linalg.norm(ground - CHECKS_MM, axis=1)) < 150.0


def test_round_trip_image_ground_image(camera):
    grid = np.stack(np.meshgrid(np.linspace(0, 767, 25), np.linspace(60, 575, 20)), -1).reshape(-1, 2)
    ground = camera.image_to_ground(grid)
    assert np.isfinite(ground).all()
    back = camera.world_to_image(ground)
    assert np.max(np.abs(back - grid)) < 0.01


def test_distortion_is_applied(camera):
    """A corner pixel differs from the distortion-free projection by several pixels."""
    undistorted = dataclasses.replace(camera, kappa1=0.0)
    corner = np.array([[5.0, 570.0]])
    ground = camera.image_to_ground(corner)
    assert np.linalg.norm(undistorted.world_to_image(ground) - corner) > 5.0
    np.testing.assert_allclose(camera.world_to_image(ground), corner, atol=1e-6)


def test_points_behind_camera_and_above_horizon_are_nan(camera):
    behind = 2 * camera.centre_mm - np.array([-8000.0, -8000.0, 0.0])  # mirror a ground point
    assert np.isnan(camera.world_to_image(behind[None])).all()
    sky = np.array([[384.0, -5000.0]])
    assert np.isnan(camera.image_to_ground(sky)).all()


def test_bad_file_names_the_fix(tmp_path):
    bad = tmp_path / "cam.xml"
    bad.write_text("<Camera><Geometry width='1'/></Camera>")
    with pytest.raises(TsaiCalibrationError, match="lacks the attribute"):
        TsaiCamera.from_xml(bad)
    with pytest.raises(TsaiCalibrationError, match="cannot read"):
        TsaiCamera.from_xml(tmp_path / "missing.xml")
