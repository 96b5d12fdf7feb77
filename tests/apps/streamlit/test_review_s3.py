"""The review app on an S3 deployment (``SPOTON_STORE=s3://B/store``, the lake at ``s3://B/lake``): a real
pipeline's store and lake uploaded to a SeaweedFS of the test's own, plus a live session's history
written straight to the S3 lake. The app mirrors the lake, shows batch and live data, decodes frames
from S3, and after retention deleted the live files a reload no longer shows them."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import review_data as rd
from spoton.live.history import HistoryConfig, LiveHistoryWriter
from spoton.records import CameraFrameResult, Detections, Tracks
from spoton.storage.lake import ParquetLake
from spoton.storage.retention import apply_retention
from spoton.storage.store import S3Store
from support.seaweed import start_seaweed

pytestmark = pytest.mark.integration
ENV = "pets_s2l1"
ACCESS, SECRET = "spoton-review-test", "spoton-review-test-secret-0123"
APP_DIR = Path(__file__).resolve().parents[3] / "apps" / "streamlit"
LIVE_T0 = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc).timestamp()


@pytest.fixture(scope="module")
def s3_deployment(pipeline_var, tmp_path_factory):
    """SeaweedFS with the pipeline's store and lake, and 2 s of a live session in the lake; the env."""
    server, client = start_seaweed(tmp_path_factory.mktemp("seaweed"), ACCESS, SECRET)
    cache = tmp_path_factory.mktemp("test-cache")
    store, lake = S3Store(client, "review", "store", cache_dir=cache), S3Store(client, "review", "lake", cache_dir=cache)
    store.ensure_bucket()
    for folder, target in (("store", store), ("lake", lake)):
        for path in sorted((pipeline_var / folder).rglob("*")):
            if path.is_file():
                target.upload_file(path, path.relative_to(pipeline_var / folder).as_posix())
    writer = LiveHistoryWriter(lake, HistoryConfig(flush_interval_s=3600))
    tracks = Tracks(np.array([[10, 20, 50, 120]], float), np.array([1]), np.array([0.9]), np.zeros(1), np.arange(1))
    for k in range(20):
        result = CameraFrameResult("view_001", k, 0.0, (768, 576), Detections.empty(), tracks, np.array([[1.0, 2.0]]))
        writer.append("s-review", ENV, {"view_001": result}, {"view_001": np.array([1])}, {"view_001": LIVE_T0 + k / 10})
    writer.close()
    env = {"SPOTON_VAR": str(tmp_path_factory.mktemp("review-var")), "SPOTON_STORE": "s3://review/store",
           "SPOTON_S3_ENDPOINT": server.endpoint, "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}
    yield env, store, lake
    server.stop()


def test_the_review_app_reads_the_s3_lake_and_follows_retention(s3_deployment, pipeline_var, monkeypatch):
    env, store, lake = s3_deployment
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPOTON_LAKE", raising=False)
    paths = rd.ReviewPaths.from_env()
    assert paths.s3 is not None and paths.s3.lake == "s3://review/lake"

    at = AppTest.from_file(str(APP_DIR / "app.py"), default_timeout=120)  # mirrors the lake at start
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="environment").value == ENV
    assert any("s3://review/lake" in c.value for c in at.sidebar.caption)
    at.switch_page("review_pages/map.py").run()
    assert not at.exception, at.exception

    local = rd.ReviewPaths.from_var(pipeline_var)
    assert rd.trajectories(paths, ENV).equals(rd.trajectories(local, ENV))  # batch rows as on disk
    assert rd.live_sessions(paths, ENV)["session_id"].tolist() == ["s-review"]
    assert len(rd.trajectories(paths, ENV, "live", "s-review")) == 20
    segment = rd.segments(paths, ENV)[0]
    camera = rd.load_environment(paths, ENV).camera_names[0]
    first, _ = rd.frame_range(paths, ENV, segment, camera)
    frame = rd.decode_frame(paths, ENV, camera, segment, first)  # from S3, through the store's cache
    assert frame.shape == rd.decode_frame(local, ENV, camera, segment, first).shape

    deleted = apply_retention(lake, store, 1.0, now=datetime.now(timezone.utc) + timedelta(days=400))
    assert {d.kind for d in deleted} == {"live_history"} and not ParquetLake(lake).live_keys("map_trajectories")
    rd.sync(paths)  # the app's "Reload from S3"
    assert rd.live_sessions(paths, ENV).empty and rd.trajectories(paths, ENV, "live").empty
    assert rd.trajectories(paths, ENV).equals(rd.trajectories(local, ENV))
