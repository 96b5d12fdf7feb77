import pyarrow.parquet as pq
import pytest

from spoton.cli import main
from spoton.video import probe


@pytest.mark.integration
def test_track_writes_parquet_and_a_browser_playable_mp4(sample_video, tmp_path, capsys):
    assert main(["track", str(sample_video), "--out", str(tmp_path), "--max-frames", "25", "--quiet"]) == 0
    tracks = pq.read_table(tmp_path / "tracks.parquet").to_pandas()
    detections = pq.read_table(tmp_path / "detections.parquet").to_pandas()
    assert tracks["frame_index"].nunique() > 15 and tracks["track_id"].nunique() >= 3
    assert ((tracks[["bbox_x", "bbox_y"]] >= 0).all().all() and (tracks["bbox_x"] + tracks["bbox_w"] <= 1.0001).all())
    assert detections["track_id"].notna().sum() == len(tracks)
    video = probe(tmp_path / "annotated.mp4")
    assert video.codec == "h264" and video.frame_count == 25
    assert "distinct tracks" in capsys.readouterr().out


def test_corrupt_video_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    assert main(["track", str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "spoton: error:" in capsys.readouterr().err
    assert not (tmp_path / "out" / "tracks.parquet").exists()


def test_missing_detector_model_is_a_clear_error(sample_video, tmp_path, capsys):
    code = main(["track", str(sample_video), "--out", str(tmp_path), "--detector", "yolo", "--quiet"])
    assert code == 2 and "--detector-model" in capsys.readouterr().err
