import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spoton.cli import main
from spoton.storage.schemas import TABLES
from spoton.video import probe


@pytest.mark.integration
def test_track_writes_parquet_and_a_browser_playable_mp4(sample_video, tmp_path, capsys):
    assert main(["track", str(sample_video), "--out", str(tmp_path), "--max-frames", "25", "--quiet"]) == 0
    tracks = pq.read_table(tmp_path / "tracks.parquet").to_pandas()
    detections = pq.read_table(tmp_path / "detections.parquet").to_pandas()
    assert tracks["frame_index"].nunique() > 15 and tracks["track_id"].nunique() >= 3
    assert ((tracks[["bbox_x", "bbox_y"]] >= 0).all().all() and (tracks["bbox_x"] + tracks["bbox_w"] <= 1.0001).all())
    observed = tracks[~tracks["interpolated"]]
    assert len(observed) <= detections["track_id"].notna().sum(), "offline rows are online rows, or flagged"
    assert tracks["track_id"].nunique() <= tracks["tracker_id"].nunique(), "stitching only joins tracker ids"
    expected = tracks[["x1", "y1", "x2", "y2"]].to_numpy() / [768, 576, 768, 576]
    assert np.allclose(tracks[["bbox_x", "bbox_y"]].to_numpy(), expected[:, :2], atol=1e-4)
    video = probe(tmp_path / "annotated.mp4")
    assert video.codec == "h264" and video.frame_count == 25
    assert "distinct tracks" in capsys.readouterr().out

    online = tmp_path / "online"
    assert main(["track", str(sample_video), "--out", str(online), "--max-frames", "25", "--quiet",
                 "--online-only", "--no-video"]) == 0
    online_tracks = pq.read_table(online / "tracks.parquet").to_pandas()
    assert pq.read_table(online / "detections.parquet").column("track_id").null_count + len(online_tracks) == len(detections)


def test_corrupt_video_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    assert main(["track", str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "spoton: error:" in capsys.readouterr().err
    assert not (tmp_path / "out" / "tracks.parquet").exists()


def test_missing_detector_model_is_a_clear_error(sample_video, tmp_path, capsys):
    code = main(["track", str(sample_video), "--out", str(tmp_path), "--detector", "yolo", "--quiet"])
    assert code == 2 and "--detector-model" in capsys.readouterr().err


@pytest.mark.integration
def test_sql_documents_every_column_of_the_pipeline_tables(pipeline_var, capsys):
    """The catalog `make demo` builds carries each column's contract description as a comment."""
    sql = ("select table_name, column_name, comment from duckdb_columns() "
           "where table_name = 'camera_tracks' and column_name = 'interpolated'")
    assert main(["sql", "--catalog", str(pipeline_var / "spoton.duckdb"), sql]) == 0
    assert "camera_tracks | interpolated | true for a box filled in across a hole" in capsys.readouterr().out
    undocumented = ("select count(*) from duckdb_columns() where comment is null and table_name in "
                    f"({', '.join(repr(name) for name in TABLES)})")
    assert main(["sql", "--catalog", str(pipeline_var / "spoton.duckdb"), undocumented]) == 0
    assert capsys.readouterr().out.splitlines()[2].strip() == "0"


@pytest.mark.integration
def test_batch_rows_of_the_live_tables_say_batch(pipeline_var, capsys):
    """The pipeline's camera_tracks and map_trajectories carry source = 'batch' (the lake fills it)."""
    sql = ("select 'camera_tracks' as t, source, count(session_id) as sessions, count(*) > 0 as rows "
           "from camera_tracks group by all union all select 'map_trajectories', source, count(session_id), "
           "count(*) > 0 from map_trajectories group by all order by 1")
    assert main(["sql", "--catalog", str(pipeline_var / "spoton.duckdb"), sql]) == 0
    lines = [line.replace(" ", "") for line in capsys.readouterr().out.splitlines()[2:4]]
    assert lines == ["camera_tracks|batch|0|True", "map_trajectories|batch|0|True"]


# ---- accuracy evaluation: `spoton eval`, `spoton export-mot`
def _eval_args(var) -> list[str]:
    return ["eval", "--lake", str(var / "lake"), "--store", str(var / "store")]


@pytest.mark.integration
def test_eval_prints_the_metrics_table_of_the_pipeline_run(pipeline_var, capsys):
    assert main(_eval_args(pipeline_var)) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| sequence | HOTA | MOTA | IDF1 |")
    names = [row.split(" | ")[0][2:] for row in rows[1:]]
    assert names == [f"cam{i} (global ids)" for i in (1, 2, 3)] + [f"cam{i} (tracker ids)" for i in (1, 2, 3)] + [
        "all cameras (cross-camera)", "floor, trajectories within 0.5 m", "floor, trajectories within 1 m"]
    assert all(0 <= float(row.split(" | ")[2]) <= 100 for row in rows[1:])  # MOTA in percent


@pytest.mark.integration
def test_eval_json_is_one_record_per_scored_sequence(pipeline_var, capsys):
    import json

    assert main(_eval_args(pipeline_var) + ["--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["scope"], r["camera"]) for r in records][-3:] == [
        ("cross_camera", "all"), ("ground_plane_0.5m", "all"), ("ground_plane_1m", "all")] and len(records) == 9
    assert all(0 <= r["idf1"] <= 1 and 0 <= r["hota"] <= 1 and r["gt_boxes"] > 0 for r in records)


@pytest.mark.integration
def test_eval_without_ground_truth_says_so_and_succeeds(pipeline_var, tmp_path, capsys):
    assert main(["eval", "--lake", str(pipeline_var / "lake"), "--store", str(tmp_path / "empty_store")]) == 0
    out = capsys.readouterr().out
    assert "has no ground truth" in out and "nothing to score" in out and "| sequence |" not in out


@pytest.mark.integration
def test_export_mot_writes_what_read_mot_reads_back(pipeline_var, tmp_path, capsys):
    from spoton.evaluation.mot import MotBoxes
    from spoton.storage.lake import ParquetLake
    from spoton.storage.store import LocalStore

    assert main(["export-mot", "--lake", str(pipeline_var / "lake"), "--out", str(tmp_path / "mot")]) == 0
    printed = capsys.readouterr().out
    tracks = ParquetLake(LocalStore(pipeline_var / "lake")).read("camera_tracks", "pets_s2l1").to_pandas()
    files = sorted((tmp_path / "mot" / "pets_s2l1").glob("*.txt"))
    assert [f.stem for f in files] == ["cam1", "cam2", "cam3"]
    for path in files:
        boxes = MotBoxes.read_mot(path)
        rows = tracks[tracks["camera"] == path.stem]
        assert len(boxes) == len(rows) and boxes.frame.min() == rows["global_frame"].min()
        assert f"{len(rows):>6} boxes -> {path}" in printed
    assert np.isfinite(MotBoxes.read_mot(files[0]).map_xy).any(), "map metres travel in the world x, y columns"


def test_eval_scores_a_tracks_file_against_a_mot_ground_truth(tmp_path, capsys):
    import json

    # one person, 6 frames; the tracker finds the person in frames 0..3 with one id and misses 4..5
    gt = tmp_path / "gt.txt"
    gt.write_text("".join(f"{f + 1},1,{10 + f},20,30,60,1,-1,-1,-1\n" for f in range(6)))
    tracks = pa.table({"frame_index": pa.array(range(4), pa.int64()), "track_id": pa.array([4] * 4, pa.int64()),
                       "x1": [10.0 + f for f in range(4)], "y1": [20.0] * 4, "x2": [40.0 + f for f in range(4)],
                       "y2": [80.0] * 4, "conf": [0.9] * 4, "map_x": [None] * 4, "map_y": [None] * 4})
    pq.write_table(tracks, tmp_path / "tracks.parquet")
    assert main(["eval", "--tracks", str(tmp_path / "tracks.parquet"), "--gt", str(gt), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    # every GT frame counts: 4 of 6 found, no false positive: MOTA = recall = 4 / 6, IDF1 = 2 * 4 / (6 + 4)
    assert metrics["mota"] == pytest.approx(4 / 6) and metrics["recall"] == pytest.approx(4 / 6)
    assert metrics["idf1"] == pytest.approx(0.8) and metrics["precision"] == 1.0
    assert main(["eval", "--tracks", str(tmp_path / "tracks.parquet"), "--gt", str(gt), "--processed-only",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mota"] == pytest.approx(1.0)  # frames 4..5 were never processed
    assert main(["eval", "--tracks", str(tmp_path / "tracks.parquet"), "--gt", str(gt)]) == 0
    row = capsys.readouterr().out.splitlines()[2].split(" | ")
    assert row[0] == f"| {tmp_path.name}" and row[2:4] == ["66.7", "80.0"]  # MOTA, IDF1 in percent
    assert main(["eval", "--tracks", str(tmp_path / "tracks.parquet")]) == 2
    assert "--tracks needs --gt" in capsys.readouterr().err
