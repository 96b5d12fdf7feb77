"""The whole asset graph on a short slice of the sample environment (real video, real models)."""
import shutil

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, build_sensor_context, instance_for_test

from assets.partitions import ENVIRONMENTS, SEGMENTS
from orchestration.runner import (materialize_adaptation, materialize_environment, materialize_segment,
                                  register_partitions)
from resources.lake_io import ParquetLakeIOManager
from resources.perception import PerceptionResource
from resources.store import LocalStoreResource
from spoton.storage.catalog import build_catalog, query
from spoton.environment import scan_sub_videos
from spoton.storage.lake import ParquetLake
from spoton.sample import ENV_NAME
from spoton.sample.builder import build_sample_environment
from spoton.storage.store import LocalStore

pytestmark = pytest.mark.integration
SOURCE_FRAMES = 28  # 7 per segment: a few seconds of processing per partition


@pytest.fixture(scope="module")
def store_root(tmp_path_factory, sample_video, write_fixture_ground_truth):
    root = tmp_path_factory.mktemp("store")
    build_sample_environment(sample_video, root, ENV_NAME, max_source_frames=SOURCE_FRAMES)
    write_fixture_ground_truth(LocalStore(root), ENV_NAME)  # the committed annotation, frames 0..27
    return root


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory):
    return tmp_path_factory.mktemp("lake")


@pytest.fixture(scope="module")
def resources(store_root, lake_root, cache_dir):
    return {"store": LocalStoreResource(root=str(store_root)),
            "lake_io_manager": ParquetLakeIOManager(store=LocalStoreResource(root=str(lake_root))),
            "perception": PerceptionResource(cache_dir=str(cache_dir))}


@pytest.fixture(scope="module")
def instance():
    with instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="module")
def materialized(instance, resources, store_root):
    found = scan_sub_videos(LocalStore(store_root))
    register_partitions(instance, found)
    runs = [materialize_segment(ENV_NAME, s, resources, instance) for s in sorted(found[ENV_NAME])]
    runs.append(materialize_environment(ENV_NAME, resources, instance))
    return runs


def test_whole_graph_materializes_and_is_queryable(materialized, lake_root, tmp_path):
    assert all(run.success for run in materialized), [r.error for r in materialized if not r.success]
    lake = ParquetLake(LocalStore(lake_root))
    assert {"sub_video_manifest", "frames", "detections", "tracklets", "tracklet_embeddings", "global_identities",
            "map_trajectories", "heatmaps", "occupancy", "dwell"} <= set(lake.tables())
    catalog = tmp_path / "catalog.duckdb"
    build_catalog(lake, catalog)
    (identities,), = query(catalog, "select count(distinct global_id) from global_identities")[1]
    (cameras,), = query(catalog, "select count(distinct camera) from tracklets")[1]
    assert cameras == 3 and 1 <= identities < 40
    (frames_per_cam,), = query(catalog, "select max(n) from (select count(*) n from frames group by camera)")[1]
    assert frames_per_cam == SOURCE_FRAMES  # cam1, cam2 cover every source frame
    (metres,), = query(catalog, "select max(abs(map_x)) from map_trajectories")[1]
    assert metres < 40, "positions are metres on the floor plan, not pixels"


def test_a_person_keeps_one_global_id_across_cameras_and_segments(materialized, lake_root):
    """Ground-truth people (warped into each virtual camera) must map to one global id each."""
    import json
    from collections import Counter

    import numpy as np

    from pathlib import Path

    FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"  # not `from conftest`: ambiguous beside other conftests
    from spoton.sample.builder import load_sample_cameras

    truth = np.array(json.loads((FIXTURES / "vtest_gt_frames_0000_0027.json").read_text())["rows"])
    lake = ParquetLake(LocalStore(lake_root))
    tracklets = lake.read_many("tracklets", ENV_NAME, ["01", "02", "03", "04"]).to_pandas()
    ids = lake.read("global_identities", ENV_NAME).to_pandas()[["tracklet_id", "global_id"]]
    tracklets = tracklets.merge(ids, on="tracklet_id")
    seen: dict[int, list[tuple[str, str, int]]] = {}
    for camera in load_sample_cameras():
        for frame in np.unique(truth[:, 0]).astype(int):
            rows = truth[truth[:, 0] == frame]
            boxes, kept = camera.source_boxes_to_camera(rows[:, 2:6])
            ours = tracklets[(tracklets["camera"] == camera.name) & (tracklets["global_frame"] == frame)]
            if ours.empty:
                continue
            for person, box in zip(rows[kept, 1].astype(int), boxes):
                xyxy = ours[["x1", "y1", "x2", "y2"]].to_numpy()
                inter = (np.clip(np.minimum(xyxy[:, 2], box[2]) - np.maximum(xyxy[:, 0], box[0]), 0, None)
                         * np.clip(np.minimum(xyxy[:, 3], box[3]) - np.maximum(xyxy[:, 1], box[1]), 0, None))
                iou = inter / ((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
                               + (box[2] - box[0]) * (box[3] - box[1]) - inter)
                if iou.max() >= 0.5:
                    best = ours.iloc[int(iou.argmax())]
                    seen.setdefault(person, []).append((camera.name, best["segment"], int(best["global_id"])))
    purity = {p: Counter(g for *_, g in obs).most_common(1)[0][1] / len(obs) for p, obs in seen.items()}
    assert np.mean(list(purity.values())) >= 0.8, purity
    spanning = [p for p, obs in seen.items()
                if len({c for c, _, _ in obs}) >= 2 and len({s for _, s, _ in obs}) >= 2 and purity[p] >= 0.9]
    assert spanning, "some person seen by two cameras over two segments keeps one global id"


def test_adaptation_job_stores_a_versioned_head_from_the_lake(materialized, instance, resources, store_root,
                                                             lake_root):
    run = materialize_adaptation(ENV_NAME, resources, instance)
    assert run.success, run.error
    record = ParquetLake(LocalStore(lake_root)).read("appearance_adaptation", ENV_NAME).to_pylist()
    assert len(record) == 1 and record[0]["tracklets"] > 0
    assert LocalStore(store_root).exists(record[0]["model_key"])
    assert record[0]["version"] in record[0]["model_key"]


def test_rematerializing_a_partition_replaces_rows(materialized, instance, resources, lake_root):
    lake = ParquetLake(LocalStore(lake_root))
    before = lake.read("tracklets", ENV_NAME, "02")
    assert materialize_segment(ENV_NAME, "02", resources, instance).success
    after = lake.read("tracklets", ENV_NAME, "02")
    assert after.num_rows == before.num_rows and after.equals(before)
    assert not [p for p in lake_root.rglob("*") if p.name.endswith(".part")], "no temporary files left"


def test_corrupt_sub_video_fails_only_its_partition(materialized, instance, resources, store_root, lake_root):
    broken = store_root / ENV_NAME / "cam2" / "sub_video_03.mp4"
    backup = broken.read_bytes()
    try:
        broken.write_bytes(b"\x00not a video" * 500)
        failed = materialize_segment(ENV_NAME, "03", resources, instance)
        assert not failed.success and "sub_video_03.mp4" in failed.error and "replace the file" in failed.error
        assert materialize_segment(ENV_NAME, "04", resources, instance).success
        assert materialize_environment(ENV_NAME, resources, instance).success  # uses what exists
    finally:
        broken.write_bytes(backup)


def test_sensor_adds_partitions_and_requests_runs(store_root, resources):
    from orchestration.sensors import sub_video_sensor

    with instance_for_test() as fresh:
        context = build_sensor_context(instance=fresh, resources={"store": resources["store"]})
        result = sub_video_sensor(context)
        assert sorted(r.partition_key.keys_by_dimension["segment"] for r in result.run_requests) == ["01", "02", "03", "04"]
        added = {req.partitions_def_name: set(req.partition_keys) for req in result.dynamic_partitions_requests}
        assert added == {ENVIRONMENTS.name: {ENV_NAME}, SEGMENTS.name: {"01", "02", "03", "04"}}
        again = sub_video_sensor(build_sensor_context(instance=fresh, cursor=result.cursor,
                                                      resources={"store": resources["store"]}))
        assert again.run_requests == []  # nothing new in the store


def _latest_check(instance, name: str = "accuracy_targets"):
    from dagster import AssetCheckKey, AssetKey

    key = AssetCheckKey(AssetKey("tracking_evaluation"), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data


def test_environment_run_scores_tracking_against_ground_truth(materialized, instance, lake_root):
    assert all(run.success for run in materialized), [r.error for r in materialized if not r.success]
    table = ParquetLake(LocalStore(lake_root)).read("tracking_evaluation", ENV_NAME).to_pandas()
    assert sorted(zip(table["scope"], table["camera"])) == sorted(
        [(s, c) for s in ("global", "tracker") for c in ("cam1", "cam2", "cam3")] + [("cross_camera", "all")]
        + [("ground_plane_0.5m", "all"), ("ground_plane_1m", "all")])
    floor = table[table["scope"] == "ground_plane_1m"].iloc[0]  # the fused trajectories on the floor
    assert floor["gt_boxes"] > 0 and floor["true_positives"] > 0
    for column in ("hota", "mota", "idf1", "precision", "recall"):
        assert table[column].between(0, 1).all(), table[[column]]
    assert (table["gt_boxes"] > 0).all() and (table["true_positives"] > 0).all()
    cross = table[table["scope"] == "cross_camera"].iloc[0]
    assert cross["gt_boxes"] == table[table["scope"] == "global"]["gt_boxes"].sum()
    assert cross["idf1"] > 0.3 and table["map_error_median_m"].dropna().between(0, 5).all()

    check = _latest_check(instance)
    assert check.severity.value == "WARN"
    figures = {k: v.value for k, v in check.metadata.items()}
    assert figures["target_cross_camera_idf1"] == 0.8 and figures["target_map_error_median_m"] == 0.5
    assert figures["cross_camera_idf1"] == pytest.approx(cross["idf1"], abs=1e-4)
    assert {"cam1_mota", "cam2_idf1", "cam3_mota", "map_error_median_m"} <= set(figures)
    assert check.passed == (figures["failed"] == [])


def test_accuracy_check_is_skipped_without_ground_truth(materialized, instance, resources, store_root, lake_root):
    from dagster import AssetSelection, materialize

    from orchestration.runner import QUIET, _assets

    truth = store_root / ENV_NAME / "ground_truth"
    aside = store_root / "ground_truth_aside"
    truth.rename(aside)
    try:
        result = materialize(_assets(), instance=instance, partition_key=ENV_NAME, resources=resources,
                             selection=AssetSelection.assets("tracking_evaluation"), run_config=QUIET)
    finally:
        aside.rename(truth)
    assert result.success
    table = ParquetLake(LocalStore(lake_root)).read("tracking_evaluation", ENV_NAME)
    assert table.num_rows == 0 and {"scope", "camera", "mota", "idf1", "map_error_median_m"} <= set(table.column_names)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["skipped"].value.startswith("no ground truth")
