"""The general environment model: validation, the stored form's schema, versioned storage, the old form."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spoton.geometry import Homography, Zone
from spoton.site.model import Calibration, Camera, CameraSource, Environment, EnvironmentConfigError, FloorPlan
from spoton.site.schema import ENVIRONMENT_SCHEMA, validate_document
from spoton.site.storage import (
    current_version, from_document, list_environments, list_versions, load_environment, restore_version,
    save_environment, to_document, version_key,
)
from spoton.storage.store import LocalStore, StoreError

REPO = Path(__file__).resolve().parents[3]
LEGACY_DIR = REPO / "data" / "environments"  # the sample's committed config, in the first stored form
TRUE_H = np.array([[0.02, 0.001, -3.0], [0.0005, -0.025, 9.0], [0.00001, 0.0002, 1.0]])


def _pairs():
    image = np.array([[x, y] for x in (40.0, 200.0, 400.0, 600.0) for y in (120.0, 300.0, 460.0)])
    homogeneous = np.column_stack([image, np.ones(len(image))]) @ TRUE_H.T
    return image, homogeneous[:, :2] / homogeneous[:, 2:]


def _site(name="lobby", zone_x=2.0) -> Environment:
    image, world = _pairs()
    door = Camera("door", 7.0, (640, 480), Calibration.from_point_pairs(image, world),
                  tracked_region_m=[[-5, -5], [5, -5], [5, 5], [-5, 5]], source=CameraSource("store", f"{name}/door/sub_video_01.mp4"))
    hall = Camera("hall", 7.0, (640, 480), start_offset_frames=3, time_offset_s=3 / 7)
    plan = FloorPlan("floor_plan.png", (400, 300), 0.05, (-10.0, 8.0), "up")
    return Environment(name, 7.0, (door, hall), plan, (Zone("desk", np.array([[0, 0], [zone_x, 0], [zone_x, 2]])),))


def test_calibration_fits_the_homography_of_its_point_pairs():
    image, world = _pairs()
    calibration = Calibration.from_point_pairs(image, world)
    assert calibration.reprojection_error_m < 1e-6 and calibration.inliers.all()
    np.testing.assert_allclose(calibration.homography.to_map(image), world, atol=1e-6)
    with pytest.raises(ValueError):
        calibration.image_points[0, 0] = 1.0  # frozen all the way down


@pytest.mark.parametrize("build, message", [
    (lambda: Calibration.from_point_pairs([[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 0], [0, 1]]), "at least 4"),
    (lambda: Calibration.from_point_pairs(*_pairs()[:1], _pairs()[1][:5]), "one map point"),
    (lambda: Camera("calibration", 7.0, (640, 480)), "reserved"),
    (lambda: Camera("door", 0.0, (640, 480)), "fps must be > 0"),
    (lambda: Camera("door", 7.0, (640, -1)), "positive"),
    (lambda: Camera("my camera", 7.0, (640, 480)), "letters, digits"),
    (lambda: Camera("door", 7.0, (640, 480), tracked_region_m=[[0, 0], [1, 1]]), "tracked_region_m"),
    (lambda: CameraSource("ftp", "x"), "kind 'ftp'"),
    (lambda: FloorPlan("plan.png", (10, 10), 0.05, (0, 0), "sideways"), "y_axis"),
    (lambda: FloorPlan("../plan.png", (10, 10), 0.05, (0, 0)), "relative to the environment"),
    (lambda: Environment("x", 7.0, (), FloorPlan(None, (10, 10), 0.1, (0, 0)), segment_length_s=0), "segment_length_s"),
    (lambda: Environment("x", 7.0, (Camera("a", 7, (4, 4)), Camera("a", 7, (4, 4))), FloorPlan(None, (10, 10), 0.1, (0, 0))),
     "appear twice"),
])
def test_bad_descriptions_get_an_error_that_says_what_to_fix(build, message):
    with pytest.raises(EnvironmentConfigError, match=message):
        build()


@pytest.mark.parametrize("y_axis, pixel_of_1_1, bounds", [
    ("up", [20.0, 20.0], (0.0, -15.0, 20.0, 1.0)),
    ("down", [20.0, 20.0], (0.0, 1.0, 20.0, 17.0)),
])
def test_floor_plan_axes(y_axis, pixel_of_1_1, bounds):
    origin_y = 1.0 if y_axis == "up" else 1.0
    plan = FloorPlan(None, (400, 320), 0.05, (0.0, origin_y), y_axis)
    np.testing.assert_allclose(plan.to_pixels(np.array([[0.0, origin_y]])), [[0, 0]], atol=1e-12)
    one = [[1.0, origin_y - 1.0]] if y_axis == "up" else [[1.0, origin_y + 1.0]]
    np.testing.assert_allclose(plan.to_pixels(np.array(one)), [pixel_of_1_1])
    assert plan.bounds_m == pytest.approx(bounds)
    np.testing.assert_allclose(plan.to_metres(plan.to_pixels(np.array(one))), one)


def test_the_stored_form_matches_the_schema_and_round_trips_exactly():
    env = _site()
    document = to_document(env)
    validate_document(document)
    assert set(document) <= set(ENVIRONMENT_SCHEMA["properties"])
    again = from_document(json.loads(json.dumps(document)))
    assert to_document(again) == document
    np.testing.assert_array_equal(again.camera("door").calibration.image_to_map, env.camera("door").calibration.image_to_map)
    assert again.camera("hall").calibration is None and again.camera_spec("hall").homography is None


def test_a_vertical_vanishing_point_is_stored_validated_and_reaches_the_camera_spec():
    image, world = _pairs()
    door = Camera("door", 7.0, (640, 480), Calibration.from_point_pairs(image, world, [320.0, 2400.0]))
    env = Environment("lobby", 7.0, (door,), FloorPlan(None, (400, 300), 0.05, (-10.0, 8.0)))
    document = to_document(env)
    assert document["cameras"][0]["calibration"]["vertical_vanishing_point"] == [320.0, 2400.0]
    again = from_document(json.loads(json.dumps(document)))
    np.testing.assert_array_equal(again.camera_spec("door").vertical_vanishing_point, [320.0, 2400.0])
    assert "vertical_vanishing_point" not in to_document(_site())["cameras"][0]["calibration"]  # optional
    with pytest.raises(EnvironmentConfigError, match="vertical_vanishing_point: give \\[x, y\\]"):
        Calibration.from_point_pairs(image, world, [320.0])


def test_a_document_that_breaks_the_schema_names_the_place():
    document = to_document(_site())
    document["cameras"][0]["resolution"] = [640]
    document["floor_plan"]["pixels_per_metre"] = 20
    with pytest.raises(EnvironmentConfigError) as error:
        from_document(document, "lobby.json")
    assert "lobby.json" in str(error.value)
    assert "cameras/0/resolution" in str(error.value) and "pixels_per_metre" in str(error.value)


def test_versions_are_saved_loaded_listed_and_restored(tmp_path):
    store = LocalStore(tmp_path)
    assert save_environment(store, _site()) == 1
    assert save_environment(store, _site()) == 1, "an unchanged environment is not saved again"
    assert save_environment(store, _site(zone_x=3.0)) == 2
    assert list_versions(store, "lobby") == [1, 2] and current_version(store, "lobby") == 2
    assert load_environment(store, "lobby").zones[0].polygon_m[1, 0] == 3.0
    assert load_environment(store, "lobby", version=1).zones[0].polygon_m[1, 0] == 2.0
    assert restore_version(store, "lobby", 1) == 3
    assert to_document(load_environment(store, "lobby")) == to_document(_site())
    assert list_environments(store) == ["lobby"]
    with pytest.raises(EnvironmentConfigError, match="never saved"):
        load_environment(store, "attic")


def test_a_failed_save_leaves_the_previous_version_current(tmp_path):
    store = LocalStore(tmp_path)
    save_environment(store, _site())
    # the next version's key is taken by a folder: writing it fails like a full disk would
    (tmp_path / version_key("lobby", 2)).mkdir(parents=True)
    with pytest.raises(StoreError, match="previous version .* is unchanged"):
        save_environment(store, _site(zone_x=3.0))
    assert current_version(store, "lobby") == 1
    assert to_document(load_environment(store, "lobby")) == to_document(_site())


def test_an_environment_in_another_folder_is_refused(tmp_path):
    store = LocalStore(tmp_path)
    save_environment(store, _site())
    shutil.copytree(tmp_path / "lobby", tmp_path / "attic")
    with pytest.raises(EnvironmentConfigError, match="describes 'lobby', not 'attic'"):
        load_environment(store, "attic")


def test_the_first_stored_form_still_loads_with_the_same_calibration(tmp_path):
    shutil.copytree(LEGACY_DIR / "pets_s2l1", tmp_path / "pets_s2l1")
    store = LocalStore(tmp_path)
    env = load_environment(store, "pets_s2l1")
    assert env.camera_names == ("cam1", "cam2", "cam3") and env.fps == 7.0
    assert env.camera("cam3").start_offset_frames == 3 and env.floor_plan.image_key == "floor_plan.png"
    assert env.floor_plan.bounds_m == (-22.0, -19.0, 13.0, 20.0)
    for camera in env.cameras:  # the same homography the pipeline fitted from the calibration files before
        before = Homography.from_json(tmp_path / "pets_s2l1" / "calibration" / f"{camera.name}.json")
        np.testing.assert_array_equal(camera.calibration.image_to_map, before.image_to_map)
        assert camera.tracked_region_m is not None
    assert list_environments(store) == ["pets_s2l1"]
    # saving migrates it: the versioned form wins from then on and holds the same numbers
    assert save_environment(store, env) == 1
    assert to_document(load_environment(store, "pets_s2l1")) == to_document(env)


def test_pipeline_live_and_review_paths_do_not_import_the_sample():
    code = ("import sys; sys.path.insert(0, 'apps/streamlit'); "
            "import assets, orchestration.definitions, apps.live_api.sessions, review_data; "
            "leaked = sorted(m for m in sys.modules if m.startswith('spoton.sample')); "
            "assert not leaked, leaked")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_a_camera_source_keeps_its_password_out_of_the_repr():
    camera = Camera("gate", 7.0, (640, 480), source=CameraSource("rtsp", "rtsp://admin:s3cret@10.0.0.5/stream"))
    assert "s3cret" not in repr(camera) and camera.source.uri.endswith("/stream")
