"""Per-camera ground truth derived from the real PETS annotation (committed frames 0..27)."""
import numpy as np
import pytest

from spoton.ground_truth import GroundTruth, load_ground_truth, write_ground_truth
from spoton.sample.builder import TSAI_XML, load_sample_cameras
from spoton.sample.ground_truth import (SOURCE_GT_NAME, derive_camera_ground_truth, foot_points_to_map,
                                        sample_environment_ground_truth, shared_source_ground_truth)
from spoton.storage.store import LocalStore
from spoton.tsai import TsaiCamera

# PETS README check values: world mm on the ground -> source pixels
CHECKS_MM = np.array([[-4155.4, -7359.1], [-11306.0, -5599.5], [-9032.3, -12587.0]])
CHECKS_PX = np.array([[513.0, 232.0], [273.0, 306.0], [653.0, 322.0]])


@pytest.fixture(scope="module")
def env():
    return load_sample_cameras()


@pytest.fixture(scope="module")
def source(source_ground_truth):
    return source_ground_truth


@pytest.fixture(scope="module")
def cameras(env, source):
    return derive_camera_ground_truth(env, source)


def test_every_camera_gets_boxes_with_the_pets_ids(env, source, cameras):
    assert sorted(cameras) == sorted(c.name for c in env)
    for camera, boxes in cameras.items():
        assert len(boxes) > 0, camera
        assert set(boxes.ids) <= set(source.ids), "ids are the PETS person ids, not new ones"
        # each (frame, id) of a camera comes from exactly one source box
        pairs = set(zip(boxes.frame.tolist(), boxes.ids.tolist()))
        assert len(pairs) == len(boxes) and pairs <= set(zip(source.frame.tolist(), source.ids.tolist()))
    assert len(set().union(*(set(b.ids) for b in cameras.values()))) >= 0.8 * len(set(source.ids))


def test_boxes_lie_inside_each_camera_image(env, cameras):
    for camera in env:
        boxes = cameras[camera.name]
        width, height = camera.size
        assert (boxes.xyxy[:, :2] >= 0).all() and (boxes.xyxy[:, 2] <= width).all()
        assert (boxes.xyxy[:, 3] <= height).all()
        assert (boxes.xyxy[:, 2] > boxes.xyxy[:, 0]).all() and (boxes.xyxy[:, 3] > boxes.xyxy[:, 1]).all()


def test_a_camera_that_starts_late_has_no_boxes_before_it_starts(env, source, cameras):
    cam3 = next(c for c in env if c.name == "cam3")
    assert cam3.start_offset_frames == 3
    assert cameras["cam3"].frame.min() >= 3
    assert (cameras["cam3"].frame == 3).any(), "it sees people from its first frame on"
    # the same source boxes before frame 3 would be visible to cam3 if it had started
    _, kept = cam3.source_boxes_to_camera(source.xyxy[source.frame < 3])
    assert kept.any()


def test_a_person_in_the_overlap_of_two_cameras_has_one_id_in_both(cameras):
    cam1 = set(zip(cameras["cam1"].frame.tolist(), cameras["cam1"].ids.tolist()))
    cam2 = set(zip(cameras["cam2"].frame.tolist(), cameras["cam2"].ids.tolist()))
    shared = cam1 & cam2
    assert shared, "somebody is seen by cam1 and cam2 at the same frame"
    frame, person = min(shared)
    for name in ("cam1", "cam2"):
        boxes = cameras[name]
        row = np.flatnonzero((boxes.frame == frame) & (boxes.ids == person))
        assert len(row) == 1
    # the true map position of one person at one instant is the same in both cameras
    at = {name: cameras[name].map_xy[(cameras[name].frame == frame) & (cameras[name].ids == person)][0]
          for name in ("cam1", "cam2")}
    np.testing.assert_allclose(at["cam1"], at["cam2"])


def test_map_positions_are_the_tsai_ground_projection_of_the_source_foot_point(source, cameras):
    tsai = TsaiCamera.from_xml(TSAI_XML)
    # boxes whose bottom centre is a README check pixel land on the README check point (metres)
    check_boxes = np.column_stack([CHECKS_PX[:, 0] - 10, CHECKS_PX[:, 1] - 60, CHECKS_PX[:, 0] + 10, CHECKS_PX[:, 1]])
    np.testing.assert_allclose(foot_points_to_map(tsai, check_boxes), CHECKS_MM / 1000, atol=0.15)
    # and every derived box carries its source box's foot point on the ground, projecting back onto that pixel
    for boxes in cameras.values():
        for frame, person, xy in zip(boxes.frame, boxes.ids, boxes.map_xy):
            src = source.xyxy[(source.frame == frame) & (source.ids == person)][0]
            foot = np.array([(src[0] + src[2]) / 2, src[3]])
            np.testing.assert_allclose(tsai.world_to_image((xy * 1000)[None])[0], foot, atol=0.01)


def test_store_round_trip(tmp_path, cameras):
    store = LocalStore(tmp_path / "store")
    truth = GroundTruth(cameras, (0, 28), source="fixture")
    keys = write_ground_truth(store, "pets_s2l1", truth)
    assert sorted(keys) == [f"pets_s2l1/ground_truth/{c}.txt" for c in sorted(cameras)]
    loaded = load_ground_truth(store, "pets_s2l1")
    assert loaded.frames == (0, 28) and loaded.source == "fixture" and sorted(loaded.cameras) == sorted(cameras)
    for camera, boxes in cameras.items():
        back = loaded.cameras[camera]
        order = np.lexsort((boxes.ids, boxes.frame))
        np.testing.assert_array_equal(back.frame, boxes.frame[order])
        np.testing.assert_array_equal(back.ids, boxes.ids[order])
        np.testing.assert_allclose(back.xyxy, boxes.xyxy[order], atol=0.011)  # 2 decimals, x2 = left + width
        np.testing.assert_allclose(back.map_xy, boxes.map_xy[order], atol=0.0005)
    np.testing.assert_array_equal(loaded.frames_of("cam1", np.array([0, 5, 27, 28, 40])), [0, 5, 27])


def test_no_ground_truth_in_the_store_is_none(tmp_path):
    assert load_ground_truth(LocalStore(tmp_path), "pets_s2l1") is None


def test_sample_environment_ground_truth_limits_the_frames(tmp_path, env, source):
    path = source.write_mot(tmp_path / SOURCE_GT_NAME)
    truth = sample_environment_ground_truth(env, path, max_source_frames=10)
    assert truth.frames == (0, 10)
    assert all(b.frame.max() < 10 for b in truth.cameras.values())
    assert "PETS 2009 S2.L1" in truth.source


def test_full_pets_annotation_derives_boxes_for_every_camera(shared_dir, env):
    path = shared_source_ground_truth(shared_dir)
    if path is None:
        pytest.skip(f"{shared_dir}/pets/{SOURCE_GT_NAME} is absent (the PETS development annotation of view 1)")
    truth = sample_environment_ground_truth(env, path)
    from spoton.evaluation.mot import MotBoxes

    source = MotBoxes.read_mot(path)
    assert 2300 <= len(source) <= 2500  # about 2,396 source boxes
    assert truth.frames == (0, 400)
    assert all(len(boxes) > 0 for boxes in truth.cameras.values())
