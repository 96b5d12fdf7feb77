"""One perception configuration: the CLI flags, the Dagster resource and the live settings map onto it,
and it builds the FrameProcessor with what it says (threads, tracker, thresholds), not with the environment."""
import os

import pytest
from pathlib import Path

from apps.live_api.settings import Settings
from resources.perception import PerceptionResource
from spoton.artifacts import DEFAULT_CACHE_DIR
from spoton.cli import build_parser, perception_from_args
from spoton.models.detector import DetectorConfig
from spoton.perception.config import PerceptionConfig
from spoton.identity.postprocess import TrackletCut


def test_the_cli_flags_map_onto_the_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("SPOTON_CACHE", str(tmp_path))  # the CLI is an edge: it reads the cache folder
    args = build_parser().parse_args(["track", "v.mp4", "--out", "o", "--tracker", "ocsort", "--score-threshold",
                                      "0.3", "--min-box-height", "12", "--fps", "3.5", "--threads", "2"])
    assert perception_from_args(args) == PerceptionConfig(
        tracker="ocsort", detector_config=DetectorConfig(score_threshold=0.3, min_box_height_px=12.0),
        processing_fps=3.5, threads=2, cache_dir=tmp_path)


def test_the_dagster_resource_maps_onto_the_configuration():
    resource = PerceptionResource(tracker="ocsort", score_threshold=0.3, ort_threads=2, processing_fps=3.5,
                                  split_after_missed_frames=None, crop_width=96)
    config = resource.config()
    assert config == PerceptionConfig(tracker="ocsort", detector_config=DetectorConfig(score_threshold=0.3),
                                      processing_fps=3.5, threads=2, crop_size=(96, 128),
                                      tracklet_cut=TrackletCut(None, TrackletCut.max_tracklet_s))


def test_crossings_are_switched_on_by_the_resource_and_spoton_crossings(monkeypatch):
    from orchestration.resources import perception_from_env
    from spoton.identity.crossings import CrossingConfig

    assert PerceptionResource().config().crossings is None
    assert PerceptionResource(resolve_crossings=True).config().crossings == CrossingConfig()
    monkeypatch.setenv("SPOTON_CROSSINGS", "1")
    assert perception_from_env().config().crossings == CrossingConfig()
    monkeypatch.setenv("SPOTON_CROSSINGS", "yes")
    with pytest.raises(ValueError, match="SPOTON_CROSSINGS='yes': use 1"):
        perception_from_env()


def test_the_dagster_resources_take_the_cache_folder_from_spoton_cache(monkeypatch, tmp_path):
    from orchestration.resources import perception_from_env

    monkeypatch.setenv("SPOTON_CACHE", str(tmp_path))
    assert perception_from_env().config().cache_dir == tmp_path
    monkeypatch.delenv("SPOTON_CACHE")
    assert perception_from_env().config().cache_dir == DEFAULT_CACHE_DIR == PerceptionResource().config().cache_dir


def test_the_live_settings_map_onto_the_configuration():
    settings = Settings.from_env({"SPOTON_TRACKER": "ocsort", "SPOTON_ORT_THREADS": "3", "SPOTON_STORE": "s"})
    assert settings.perception() == PerceptionConfig(tracker="ocsort", threads=3, camera_workers=os.cpu_count() or 1)
    assert Settings.from_env({"SPOTON_CAMERA_WORKERS": "1", "SPOTON_STORE": "s"}).perception().camera_workers == 1
    with pytest.raises(ValueError, match="SPOTON_CAMERA_WORKERS must be >= 1"):
        Settings.from_env({"SPOTON_CAMERA_WORKERS": "0", "SPOTON_STORE": "s", "SPOTON_API_KEYS": "k:admin"}).check()
    assert Settings.from_env({"SPOTON_STORE": "s"}).perception().tracker == "bytetrack"
    assert Settings.from_env({"SPOTON_STORE": "s", "SPOTON_CACHE": "/models"}).perception().cache_dir == Path("/models")
    assert Settings.from_env({"SPOTON_STORE": "s"}).perception().cache_dir == DEFAULT_CACHE_DIR


def test_the_detector_precision_reaches_the_configuration_from_every_edge(monkeypatch, tmp_path):
    settings = Settings.from_env({"SPOTON_STORE": "s", "SPOTON_DETECTOR_PRECISION": "int8"})
    assert settings.perception().detector_precision == "int8"
    assert Settings.from_env({"SPOTON_STORE": "s"}).perception().detector_precision == "fp32"
    with pytest.raises(ValueError, match="SPOTON_DETECTOR_PRECISION must be one of fp32, int8, got 'int4'"):
        Settings.from_env({"SPOTON_STORE": "s", "SPOTON_API_KEYS": "k:admin",
                           "SPOTON_DETECTOR_PRECISION": "int4"}).check()
    assert PerceptionResource(detector_precision="int8").config().detector_precision == "int8"
    monkeypatch.setenv("SPOTON_CACHE", str(tmp_path))
    args = build_parser().parse_args(["track", "v.mp4", "--out", "o", "--detector-precision", "int8"])
    assert perception_from_args(args).detector_precision == "int8"


@pytest.mark.parametrize("kwargs, message", [
    ({"tracker": "sort"}, "unknown tracker"),
    ({"device": "tpu"}, "device 'tpu'"),
    ({"processing_fps": 0.0}, "processing_fps"),
    ({"threads": -1}, "threads"),
    ({"detector_precision": "fp16"}, "detector_precision 'fp16': use one of fp32, int8"),
])
def test_a_bad_configuration_says_what_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PerceptionConfig(**kwargs)


def test_the_processor_gets_the_configured_threads_and_tracker_without_touching_the_environment(monkeypatch, cache_dir):
    monkeypatch.delenv("SPOTON_ORT_THREADS", raising=False)
    monkeypatch.setenv("SPOTON_DEVICE", "cuda")  # read by nothing any more
    resource = PerceptionResource(tracker="ocsort", ort_threads=1, cache_dir=str(cache_dir))
    processor = resource.config().build_processor(["cam"], frame_rate=7.0)
    assert processor.tracker_config.name == "ocsort" and processor.tracker_config.frame_rate == 7.0
    assert processor.detector.session.get_session_options().intra_op_num_threads == 1
    assert processor.detector.session.get_providers() == ["CPUExecutionProvider"]
    assert "SPOTON_ORT_THREADS" not in os.environ, "building a processor must not write the environment"


def test_a_live_processor_reuses_the_shared_detector(cache_dir):
    config = PerceptionConfig(threads=1, cache_dir=cache_dir)
    detector = config.build_detector()
    assert config.build_processor(["a", "b"], 7.0, detector=detector).detector is detector
