"""Shared fixtures: real sample video, real models, the optional ../shared oracles."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("SPOTON_SHARED", REPO_ROOT.parent / "shared"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The models' and sample data's cache the tests pass down: ``$SPOTON_CACHE`` (as ``make test`` sets
    it), else the repository's ``.cache/spoton``."""
    from spoton.artifacts import cache_dir_from

    return cache_dir_from(os.environ)


@pytest.fixture(scope="session")
def sample_video(cache_dir) -> Path:
    """vtest.avi (PETS 2009 S2.L1 view 1), fetched into the cache by `make models`."""
    from spoton.artifacts import fetch_sample_video

    return fetch_sample_video(cache_dir)


@pytest.fixture(scope="session")
def sample_clip(sample_video, tmp_path_factory):
    """``sample_clip(name, *ffmpeg_codec_args, frames=25)``: the sample's first frames re-encoded by
    ffmpeg (e.g. H.264 with a keyframe every N frames, MJPEG), made once per session."""
    from spoton.video import _ffmpeg_exe

    folder = tmp_path_factory.mktemp("clips")

    def make(name: str, *codec: str, frames: int = 25) -> Path:
        path = folder / name
        if not path.exists():
            subprocess.run([_ffmpeg_exe(), "-v", "error", "-i", str(sample_video), "-frames:v", str(frames), "-an",
                            *codec, str(path)], check=True)
        return path

    return make


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"oracle folder {SHARED_DIR} is absent (set SPOTON_SHARED to its path)")
    return SHARED_DIR


def read_frame(path: Path, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok, f"could not read frame {index} of {path}"
    return frame


@pytest.fixture(scope="session")
def frame_100(sample_video) -> np.ndarray:
    return read_frame(sample_video, 100)


def _source_ground_truth():
    """The committed PETS annotation rows of source frames 0..27 as MotBoxes (0-based frames, xyxy)."""
    import json

    from spoton.evaluation.mot import MotBoxes

    rows = np.array(json.loads((FIXTURES / "vtest_gt_frames_0000_0027.json").read_text())["rows"])
    return MotBoxes.create(rows[:, 0], rows[:, 1], rows[:, 2:6])


def _write_fixture_ground_truth(store, environment: str) -> None:
    """Per-camera ground truth of the sample environment from the committed annotation (frames 0..27)."""
    from spoton.ground_truth import GroundTruth, write_ground_truth
    from spoton.sample.builder import load_sample_cameras
    from spoton.sample.ground_truth import derive_camera_ground_truth

    cameras = derive_camera_ground_truth(load_sample_cameras(), _source_ground_truth())
    write_ground_truth(store, environment, GroundTruth(cameras, (0, PIPELINE_SOURCE_FRAMES), "test fixture"))


@pytest.fixture(scope="session")
def source_ground_truth():
    return _source_ground_truth()


@pytest.fixture(scope="session")
def write_fixture_ground_truth():
    """``write(store, environment)``: put the committed annotation's ground truth into a store."""
    return _write_fixture_ground_truth


# ---- a small deployment folder (store, lake, Dagster instance, catalog) shared by the review-app,
# notebook and correction tests: the real pipeline on a short slice of the sample environment
PIPELINE_SOURCE_FRAMES = 28


def copy_pipeline_var(source: Path, target: Path) -> Path:
    """A private copy of a pipeline folder for tests that write to it; the catalog is rebuilt because
    its views name the lake's absolute path."""
    import shutil

    from spoton.storage.catalog import build_catalog
    from spoton.storage.lake import ParquetLake
    from spoton.storage.store import LocalStore

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("spoton.duckdb*"))
    build_catalog(ParquetLake(LocalStore(target / "lake")), target / "spoton.duckdb")
    return target


@pytest.fixture(scope="session")
def pipeline_var(tmp_path_factory, sample_video) -> Path:
    """``var/`` as `make demo` lays it out, from 28 source frames; treat as read-only (see copy_pipeline_var)."""
    from dagster import DagsterInstance

    from orchestration.runner import materialize_environment, materialize_segment, register_partitions
    from resources.lake_io import ParquetLakeIOManager
    from resources.perception import PerceptionResource
    from resources.store import LocalStoreResource
    from spoton.storage.catalog import build_catalog
    from spoton.environment import scan_sub_videos
    from spoton.storage.lake import ParquetLake
    from spoton.sample import ENV_NAME
    from spoton.sample.builder import build_sample_environment
    from spoton.storage.store import LocalStore

    os.environ.setdefault("SPOTON_ORT_THREADS", "1")
    var = tmp_path_factory.mktemp("pipeline_var")
    build_sample_environment(sample_video, var / "store", ENV_NAME, max_source_frames=PIPELINE_SOURCE_FRAMES)
    _write_fixture_ground_truth(LocalStore(var / "store"), ENV_NAME)
    resources = {"store": LocalStoreResource(root=str(var / "store")),
                 "lake_io_manager": ParquetLakeIOManager(store=LocalStoreResource(root=str(var / "lake"))),
                 "perception": PerceptionResource(ort_threads=1)}
    (var / "dagster_home").mkdir()
    with DagsterInstance.from_config(str(var / "dagster_home")) as instance:
        found = scan_sub_videos(LocalStore(var / "store"))
        register_partitions(instance, found)
        runs = [materialize_segment(ENV_NAME, s, resources, instance) for s in sorted(found[ENV_NAME])]
        runs.append(materialize_environment(ENV_NAME, resources, instance))
    assert all(r.success for r in runs), [r.error for r in runs if not r.success]
    build_catalog(ParquetLake(LocalStore(var / "lake")), var / "spoton.duckdb")
    return var


@pytest.fixture
def writable_pipeline_var(pipeline_var, tmp_path) -> Path:
    """A private, writable copy of ``pipeline_var`` (corrections, re-materialization)."""
    return copy_pipeline_var(pipeline_var, tmp_path / "var")
