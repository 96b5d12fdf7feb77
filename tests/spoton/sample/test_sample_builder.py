import itertools
import json

import cv2
import numpy as np
import pytest

from spoton.geometry import points_in_polygon
from spoton.sample.builder import (
    DEFAULT_CONFIG_DIR,
    SEGMENTS,
    TSAI_XML,
    build_sample_environment,
    load_sample_cameras,
    load_sample_environment,
    segment_plan,
    write_environment_config,
)
from spoton.sample.virtual_cameras import SOURCE_SIZE
from spoton.site.storage import list_versions, load_environment, to_document
from spoton.storage.store import LocalStore
from spoton.tsai import TsaiCamera

MAX_FRAMES = 40


@pytest.fixture(scope="module")
def env():
    return load_sample_environment(DEFAULT_CONFIG_DIR)


@pytest.fixture(scope="module")
def cameras():
    return load_sample_cameras(DEFAULT_CONFIG_DIR)


@pytest.fixture(scope="module")
def tsai():
    return TsaiCamera.from_xml(TSAI_XML)


@pytest.fixture(scope="module")
def homographies(env):
    return {c.name: c.calibration.homography for c in env.cameras}


def _walking_area_source_grid(step=12.0):
    """Where PETS pedestrians walk: source rows ~150..410 across the frame."""
    xs = np.arange(10.0, SOURCE_SIZE[0] - 10, step)
    ys = np.arange(150.0, 411.0, step)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)


def _sees(camera, source_points, margin=2.0):
    px = camera.source_to_camera(source_points)
    w, h = camera.size
    inside_x = (px[:, 0] >= margin) & (px[:, 0] <= w - margin)
    return inside_x & (px[:, 1] >= margin) & (px[:, 1] <= h - margin)


def test_environment_config_shape(cameras, env):
    assert env.name == "pets_s2l1" and env.fps == 7.0 and SEGMENTS == 4
    assert env.camera_names == ("cam1", "cam2", "cam3")
    offsets = {c.name: (c.start_offset_frames, c.time_offset_s) for c in cameras}
    assert offsets["cam1"] == (0, 0.0) and offsets["cam2"] == (0, 0.0)
    assert offsets["cam3"][0] == 3 and offsets["cam3"][1] == pytest.approx(3 / 7, abs=1e-6)
    for camera in cameras:
        assert camera.size == (640, 480) and camera.warp.shape == (3, 3)
    assert 2 <= len(env.zones) <= 4
    fp = env.floor_plan
    np.testing.assert_allclose(fp.to_pixels(np.array([fp.origin_m])), [[0, 0]], atol=1e-9)
    # +X right, +Y up
    step = fp.to_pixels(np.array([[fp.origin_m[0] + 1, fp.origin_m[1] - 1]]))[0]
    np.testing.assert_allclose(step, [fp.pixels_per_metre, fp.pixels_per_metre])
    xmin, ymin, xmax, ymax = fp.bounds_m
    for camera in cameras:
        assert camera.footprint_m is not None
        assert (camera.footprint_m >= [xmin, ymin]).all() and (camera.footprint_m <= [xmax, ymax]).all()
    image_path = DEFAULT_CONFIG_DIR / fp.image_key
    assert image_path.is_file() and image_path.stat().st_size < 200_000
    image = cv2.imread(str(image_path))
    assert image.shape[:2] == (fp.size_px[1], fp.size_px[0])


def test_config_is_regenerated_deterministically(tmp_path):
    write_environment_config(tmp_path)
    for name in ["environment.json", "calibration/cam1.json", "calibration/cam2.json",
                 "calibration/cam3.json"]:
        assert (tmp_path / name).read_text() == (DEFAULT_CONFIG_DIR / name).read_text(), name
    regenerated = cv2.imread(str(tmp_path / "floor_plan.png"))
    committed = cv2.imread(str(DEFAULT_CONFIG_DIR / "floor_plan.png"))
    assert np.array_equal(regenerated, committed)


def test_calibration_files_fit_within_tolerance(cameras, env, homographies):
    for camera in cameras:
        spec = json.loads((DEFAULT_CONFIG_DIR / "calibration" / f"{camera.name}.json").read_text())
        assert spec["units"] == "m"
        assert 12 <= len(spec["image_points"]) == len(spec["map_points"]) <= 20
        h = homographies[camera.name]
        assert h.inliers.all()
        assert h.reprojection_error_m < 0.3
        assert spec["reprojection_error_m"] == pytest.approx(h.reprojection_error_m, abs=1e-3)
        assert spec["ground_check_max_m"] < 0.3


def test_calibration_agrees_with_tsai_ground_truth(cameras, env, tsai, homographies):
    """Image points of the walking area map to the Tsai ground position within 0.3 m."""
    source = _walking_area_source_grid()
    truth = tsai.image_to_ground(source) / 1000.0
    for camera in cameras:
        seen = _sees(camera, source)
        assert seen.sum() > 50
        mapped = homographies[camera.name].to_map(camera.source_to_camera(source[seen]))
        assert np.max(np.linalg.norm(mapped - truth[seen], axis=1)) < 0.3


def test_feet_on_the_axis_land_nearer_the_truth_than_the_bottom_centre(cameras, env, tsai):
    """A 1.7 m person on the walking area, as each camera's warp shows it (leaning), in an upright
    box: the foot point on the axis through the calibration's vertical vanishing point maps within
    2 cm of the feet's own pixel; the bottom-centre misses by 5 cm or more somewhere in every camera."""
    ground_mm = tsai.image_to_ground(_walking_area_source_grid(step=40.0))
    for camera in cameras:
        spec = env.camera_spec(camera.name)
        assert spec.vertical_vanishing_point is not None
        body = np.stack([camera.source_to_camera(tsai.world_to_image(
            np.column_stack([ground_mm, np.full(len(ground_mm), z)]))) for z in np.linspace(0.0, 1700.0, 18)], 1)
        boxes = np.column_stack([body.min(1), body.max(1)])  # x1, y1, x2, y2 around the body's line
        seen = np.isfinite(boxes).all(1) & _sees(camera, body[:, 0]) & _sees(camera, body[:, -1])
        feet = spec.homography.to_map(body[seen, 0])
        axis = np.linalg.norm(spec.map_positions(boxes[seen]) - feet, axis=1)
        centre = np.linalg.norm(spec.homography.to_map(
            np.column_stack([(boxes[seen, 0] + boxes[seen, 2]) / 2, boxes[seen, 3]])) - feet, axis=1)
        assert seen.sum() > 20 and axis.max() < 0.02 and centre.max() > 0.05, (camera.name, axis.max(), centre.max())


def test_a_ground_point_seen_by_two_cameras_maps_to_the_same_place(cameras, env, tsai, homographies):
    ground_mm = np.array([[-8000.0, -7000.0], [-9000.0, -9000.0], [-6000.0, -5000.0]])
    source = tsai.world_to_image(ground_mm)
    worst = 0.0
    for a, b in itertools.combinations(cameras, 2):
        both = _sees(a, source) & _sees(b, source)
        assert both.any(), (a.name, b.name)
        ma = homographies[a.name].to_map(a.source_to_camera(source[both]))
        mb = homographies[b.name].to_map(b.source_to_camera(source[both]))
        worst = max(worst, float(np.max(np.linalg.norm(ma - mb, axis=1))))
        np.testing.assert_allclose(ma, ground_mm[both] / 1000.0, atol=0.3)
    assert worst < 0.3
    # and over the whole walking area, wherever two cameras overlap
    grid = _walking_area_source_grid()
    for a, b in itertools.combinations(cameras, 2):
        both = _sees(a, grid) & _sees(b, grid)
        ma = homographies[a.name].to_map(a.source_to_camera(grid[both]))
        mb = homographies[b.name].to_map(b.source_to_camera(grid[both]))
        assert np.max(np.linalg.norm(ma - mb, axis=1)) < 0.3, (a.name, b.name)


def test_overlaps_cover_the_walking_area(cameras, env, tsai):
    grid = _walking_area_source_grid()
    seen = {c.name: _sees(c, grid) for c in cameras}
    assert np.all(np.any(list(seen.values()), axis=0)), "part of the walking area is seen by no camera"
    for name, mask in seen.items():
        assert mask.mean() > 0.5, name
    for a, b in itertools.combinations(seen, 2):
        assert (seen[a] & seen[b]).mean() > 0.35, (a, b)
    # the same on the ground: footprints (metres) overlap over the walking area
    ground = tsai.image_to_ground(grid) / 1000.0
    for a, b in itertools.combinations(cameras, 2):
        both = points_in_polygon(ground, a.footprint_m) & points_in_polygon(ground, b.footprint_m)
        assert both.mean() > 0.35, (a.name, b.name)


def test_overlaps_cover_annotated_people(cameras, env, shared_dir):
    gt = np.loadtxt(shared_dir / "pets" / "gt_view1_frames0000-0399.txt", delimiter=",")
    boxes = np.column_stack([gt[:, 2], gt[:, 3], gt[:, 2] + gt[:, 4], gt[:, 3] + gt[:, 5]])
    kept = {c.name: c.source_boxes_to_camera(boxes)[1] for c in cameras}
    for name, mask in kept.items():
        assert mask.mean() > 0.5, name
    for a, b in itertools.combinations(kept, 2):
        assert (kept[a] & kept[b]).mean() > 0.4, (a, b)


def test_source_boxes_to_camera(cameras, env):
    boxes = np.array([
        [420.0, 200.0, 450.0, 290.0],  # the crossing: all three cameras
        [640.0, 240.0, 670.0, 330.0],  # right of the crossing: cam2 and cam3, not cam1
        [-60.0, 300.0, 10.0, 380.0],  # mostly left of the frame
    ])
    results = {c.name: c.source_boxes_to_camera(boxes) for c in cameras}
    assert results["cam1"][1].tolist() == [True, False, False]
    assert results["cam2"][1].tolist() == [True, True, False]
    assert results["cam3"][1].tolist() == [True, True, False]
    for camera in cameras:
        mapped, kept = results[camera.name]
        assert mapped.shape == (kept.sum(), 4)
        w, h = camera.size
        assert (mapped >= 0).all() and (mapped[:, [0, 2]] <= w).all() and (mapped[:, [1, 3]] <= h).all()
        # the warped foot point lies at the bottom of the mapped box
        foot = camera.source_to_camera(np.array([[435.0, 290.0]]))[0]
        x1, y1, x2, y2 = mapped[0]
        assert x1 <= foot[0] <= x2 and abs(foot[1] - y2) < 0.1 * (y2 - y1)
    empty, kept = cameras[0].source_boxes_to_camera(np.zeros((0, 4)))
    assert empty.shape == (0, 4) and kept.shape == (0,)


def test_segment_plan_is_contiguous_and_cam3_starts_late(cameras, env):
    plan = segment_plan(cameras, 795, 4)
    for name, spans in plan.items():
        assert [s.filename for s in spans] == [f"sub_video_0{i}.mp4" for i in range(1, 5)]
        offset = env.camera(name).start_offset_frames
        assert spans[0].source_start == offset and spans[-1].source_stop == 795
        assert all(a.source_stop == b.source_start for a, b in zip(spans, spans[1:]))
        assert sum(s.frame_count for s in spans) == 795 - offset
        assert [s.camera_start for s in spans] == [s.source_start - offset for s in spans]
    assert [s.frame_count for s in plan["cam1"]] == [198, 198, 198, 201]
    assert [s.frame_count for s in plan["cam3"]] == [195, 198, 198, 201]


@pytest.fixture(scope="module")
def built(sample_video, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    paths = build_sample_environment(sample_video, store, max_source_frames=MAX_FRAMES)
    return store, paths


def test_build_writes_every_camera_and_segment(built, env):
    from spoton.video import probe

    store, paths = built
    assert len(paths) == 12
    expected = {"cam1": [10, 10, 10, 10], "cam2": [10, 10, 10, 10], "cam3": [7, 10, 10, 10]}
    for name, counts in expected.items():
        for index, count in enumerate(counts, start=1):
            path = store / "pets_s2l1" / name / f"sub_video_{index:02d}.mp4"
            assert path in paths
            info = probe(path)
            assert "264" in info.codec or "avc" in info.codec.lower()
            assert (info.width, info.height) == (640, 480)
            assert info.fps == pytest.approx(7.0, abs=0.01)
            assert info.frame_count == count, (path, info.frame_count)
    stored = load_environment(LocalStore(store), "pets_s2l1")
    assert to_document(stored) == to_document(env), "the store holds the committed config, in the general model"
    assert stored.camera("cam1").calibration.reprojection_error_m < 0.3
    assert (store / "pets_s2l1" / stored.floor_plan.image_key).is_file()


def test_camera_frames_are_warped_source_frames(cameras, built, env, sample_video):
    from spoton.video import iter_frames

    store, _ = built
    source = {f.index: f.image for f in iter_frames(sample_video, stop=MAX_FRAMES)}
    plan = segment_plan(cameras, MAX_FRAMES)
    for camera in cameras:
        for span in (plan[camera.name][0], plan[camera.name][2]):
            frames = list(iter_frames(store / "pets_s2l1" / camera.name / span.filename))
            assert len(frames) == span.frame_count
            for k in (0, len(frames) - 1):
                expected = camera.warp_image(source[span.source_start + k])
                diff = np.abs(frames[k].image.astype(np.int16) - expected.astype(np.int16)).mean()
                assert diff < 6.0, (camera.name, span.index, k, diff)
                # and it is not some other frame: the neighbouring source frame differs more
                other = camera.warp_image(source[span.source_start + k + (1 if k == 0 else -1)])
                assert diff < np.abs(frames[k].image.astype(np.int16) - other.astype(np.int16)).mean()


def test_build_is_idempotent(built, sample_video):
    store, paths = built
    before = {p: p.stat().st_mtime_ns for p in paths}
    again = build_sample_environment(sample_video, store, max_source_frames=MAX_FRAMES)
    assert again == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == before
    assert list_versions(LocalStore(store), "pets_s2l1") == [1], "an unchanged environment is not saved again"
    # a missing file is rebuilt, the others are left alone
    victim = store / "pets_s2l1" / "cam2" / "sub_video_03.mp4"
    victim.unlink()
    build_sample_environment(sample_video, store, max_source_frames=MAX_FRAMES)
    assert victim.is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p != victim)
