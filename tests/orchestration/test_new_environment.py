"""A new site described with the general model alone (no sample code): a floor plan, one camera's
calibration and a clip of video into a temporary store, materialized through the Dagster graph,
then queried with DuckDB."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from dagster import instance_for_test

from orchestration.runner import materialize_environment, materialize_segment, register_partitions
from resources.lake_io import ParquetLakeIOManager
from resources.perception import PerceptionResource
from resources.store import LocalStoreResource
from spoton.storage.catalog import build_catalog, query
from spoton.environment import scan_sub_videos, sub_video_key
from spoton.geometry import Zone
from spoton.storage.lake import ParquetLake
from spoton.site.model import Calibration, Camera, CameraSource, Environment, FloorPlan
from spoton.site.storage import load_environment, save_environment
from spoton.storage.store import LocalStore
from spoton.video import encode_h264, iter_frames

pytestmark = pytest.mark.integration
# a calibration measured for this video (image/map point pairs; a file of data, not sample code)
CALIBRATION = Path(__file__).resolve().parents[2] / "data" / "calibration" / "pets_s2l1_view_001.json"
ENV, CAMERA, FRAMES_PER_SEGMENT = "plaza", "north", 7


@pytest.fixture(scope="module")
def store_root(tmp_path_factory, sample_video):
    root = tmp_path_factory.mktemp("new_site_store")
    store = LocalStore(root)
    frames = [f.image for f in iter_frames(sample_video, stop=2 * FRAMES_PER_SEGMENT)]
    for segment, start in (("01", 0), ("02", FRAMES_PER_SEGMENT)):
        path = root / "clip.mp4"
        encode_h264(frames[start:start + FRAMES_PER_SEGMENT], path, fps=7.0)
        store.upload_file(path, sub_video_key(ENV, CAMERA, segment))
        path.unlink()
    plan = np.full((600, 700, 3), 255, np.uint8)  # 35 m x 30 m at 5 cm per pixel
    cv2.rectangle(plan, (100, 100), (600, 500), (90, 90, 90), 2)
    store.write_bytes(f"{ENV}/plan.png", cv2.imencode(".png", plan)[1].tobytes())

    pairs = json.loads(CALIBRATION.read_text())
    camera = Camera(CAMERA, 7.0, (768, 576), Calibration.from_point_pairs(pairs["image_points"], pairs["map_points"]),
                    tracked_region_m=pairs["region_m"], source=CameraSource("store", sub_video_key(ENV, CAMERA, "01")))
    env = Environment(ENV, 7.0, (camera,), FloorPlan("plan.png", (700, 600), 0.05, (-22.0, 10.0), "up"),
                      (Zone("crossing", np.array([[-11.0, -10.5], [-5.0, -10.5], [-5.0, -3.5], [-11.0, -3.5]])),),
                      "one camera over a plaza")
    assert save_environment(store, env) == 1
    return root


def test_a_new_environment_materializes_and_its_tables_answer_sql(store_root, tmp_path, cache_dir):
    store = LocalStore(store_root)
    assert load_environment(store, ENV).camera(CAMERA).calibration.reprojection_error_m < 0.3
    lake_root = tmp_path / "lake"
    resources = {"store": LocalStoreResource(root=str(store_root)),
                 "lake_io_manager": ParquetLakeIOManager(store=LocalStoreResource(root=str(lake_root))),
                 "perception": PerceptionResource(cache_dir=str(cache_dir))}
    found = scan_sub_videos(store)
    assert found == {ENV: {"01": {CAMERA}, "02": {CAMERA}}}
    with instance_for_test() as instance:
        register_partitions(instance, found)
        runs = [materialize_segment(ENV, s, resources, instance) for s in sorted(found[ENV])]
        runs.append(materialize_environment(ENV, resources, instance))
    assert all(run.success for run in runs), [run.error for run in runs if not run.success]

    catalog = tmp_path / "catalog.duckdb"
    views = build_catalog(ParquetLake(LocalStore(lake_root)), catalog)
    assert {"frames", "tracklets", "global_identities", "map_trajectories", "heatmaps", "occupancy"} <= set(views)
    (cameras, frames), = query(catalog, "select list(distinct camera), count(distinct global_frame) from frames")[1]
    assert cameras == [CAMERA] and frames == 2 * FRAMES_PER_SEGMENT
    (tracklets, people), = query(catalog, "select count(distinct tracklet_id), count(distinct global_id) "
                                          "from global_identities")[1]
    assert tracklets >= 3 and people >= 3, "the plaza clip has several people in view"
    (xmin, xmax, ymin, ymax), = query(catalog, "select min(map_x), max(map_x), min(map_y), max(map_y) "
                                               "from map_trajectories")[1]
    assert -22.0 <= xmin <= xmax <= 13.0 and -20.0 <= ymin <= ymax <= 10.0, "metres on this site's floor plan"
    (zones,), = query(catalog, "select list(distinct zone) from occupancy")[1]
    assert zones == ["crossing"]
