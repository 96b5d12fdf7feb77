"""Live history on the S3 lake, and retention seen by running APIs (issue 18), all real: a SeaweedFS of
the test's own and two API processes with ``SPOTON_STORE=s3://spoton-hist/store``, no ``SPOTON_LAKE``
and their own (empty) ``SPOTON_VAR``.

A session on instance A writes its tracks to ``s3://spoton-hist/lake`` (the prod profile's lake beside
the store), periodically and on stop, never to a local folder; instance B's history REST reads them
from there. Retention, run on the bucket behind both instances' backs, deletes the session's files and
an upload: both instances' listings follow the bucket.
"""
from __future__ import annotations

import io
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from live_api_server import LiveApiServer, live_store  # noqa: F401
from spoton.sample import ENV_NAME
from spoton.storage.lake import ParquetLake
from spoton.storage.retention import apply_retention
from spoton.storage.store import S3Store
from support.seaweed import start_seaweed

pytestmark = pytest.mark.integration
ACCESS, SECRET = "spoton-hist-test", "spoton-hist-test-secret-0123"
BUCKET = "spoton-hist"
BASE = f"/api/v1/environments/{ENV_NAME}"


@pytest.fixture(scope="module")
def bucket(tmp_path_factory, live_store):  # noqa: F811
    """A SeaweedFS holding the sample environment's short build under s3://spoton-hist/store; the
    store and the lake (s3://spoton-hist/lake) as the test sees them."""
    server, client = start_seaweed(tmp_path_factory.mktemp("seaweed"), ACCESS, SECRET)
    store = S3Store(client, BUCKET, "store", cache_dir=tmp_path_factory.mktemp("unused-cache"))
    store.ensure_bucket()
    for path in sorted(live_store.rglob("*")):
        if path.is_file():
            store.upload_file(path, path.relative_to(live_store).as_posix())
    yield server, store, S3Store(client, BUCKET, "lake", cache_dir=tmp_path_factory.mktemp("unused-cache"))
    server.stop()


@pytest.fixture(scope="module")
def instances(bucket, tmp_path_factory):
    server = bucket[0]
    started = []
    try:
        for name in ("a", "b"):
            var = tmp_path_factory.mktemp(f"var-{name}")
            env = {"SPOTON_STORE": f"s3://{BUCKET}/store", "SPOTON_VAR": str(var), "SPOTON_HISTORY_FLUSH_S": "1",
                   "SPOTON_S3_ENDPOINT": server.endpoint, "AWS_ACCESS_KEY_ID": ACCESS,
                   "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1"}
            started.append(LiveApiServer(var / "store", extra_env=env))
        yield tuple(instance.wait_ready() for instance in started)
    finally:
        for instance in started:
            instance.stop()


@pytest.fixture(scope="module")
def session(instances, bucket):
    """A one-camera session on A, stopped once its history has been flushed to S3 during the run."""
    first, _ = instances
    _, _, lake_store = bucket
    key = f"{ENV_NAME}/cam1/sub_video_01.mp4"
    session_id = first.create_session(tick_rate_hz=5, cameras={"cam1": {"kind": "store", "uri": key}})["session_id"]
    deadline = time.monotonic() + 60
    while not ParquetLake(lake_store).live_keys("map_trajectories") and time.monotonic() < deadline:
        time.sleep(0.2)  # the periodic flush, before the session ends
    flushed_while_running = ParquetLake(lake_store).live_keys("map_trajectories")
    time.sleep(2)
    first.delete_session(session_id)
    return session_id, flushed_while_running


def test_a_session_on_a_is_history_on_b_through_the_s3_lake(instances, bucket, session):
    first, second = instances
    _, _, lake_store = bucket
    session_id, flushed_while_running = session
    assert flushed_while_running, first.output()
    lake = ParquetLake(lake_store)
    for table in ("camera_tracks", "map_trajectories"):
        keys = lake.live_keys(table, ENV_NAME)
        assert keys and all(f"/{session_id}-" in k for k in keys)
    rows = sum(pq.read_table(io.BytesIO(lake_store.read_bytes(k))).num_rows
               for k in lake.live_keys("map_trajectories", ENV_NAME))
    for instance in (first, second):  # nothing of the lake on either instance's disk
        var = Path(instance.log.name).parent
        assert [p for p in var.rglob("*") if p.suffix in (".parquet", ".part")] == []

    with second.client("viewer") as client:
        body = client.get(f"{BASE}/trajectories", params={"source": "live", "session_id": session_id}).json()
        assert len(body["points"]) == rows > 0 and not body["truncated"]
        assert {p["session_id"] for p in body["points"]} == {session_id}
        assert len(client.get(f"{BASE}/trajectories").json()["points"]) == rows  # no batch rows in this lake
        start = body["points"][0]["ts"]
        later = client.get(f"{BASE}/trajectories",
                           params={"source": "live", "from": str(int((start + 3600) * 1000))}).json()
        assert later["points"] == []
        heat = client.get(f"{BASE}/heatmap", params={"source": "live", "session_id": session_id}).json()
        assert heat["cells"] and sum(c["seconds"] for c in heat["cells"]) > 0
        assert client.get(f"{BASE}/heatmap", params={"format": "png"}).content[:4] == b"\x89PNG"
        occupancy = client.get(f"{BASE}/occupancy", params={"source": "live", "session_id": session_id}).json()
        assert occupancy["zones"] and occupancy["buckets"]


def test_retention_on_the_bucket_reaches_both_running_instances(instances, bucket, session):
    first, second = instances
    _, store, lake_store = bucket
    session_id, _ = session
    video = store.read_bytes(f"{ENV_NAME}/cam1/sub_video_01.mp4")
    with first.client("admin") as client:
        response = client.post("/api/v1/videos", content=video, params={"filename": "clip.mp4"},
                               headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 202, response.text
        upload_id = response.json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/videos/{upload_id}").json()["state"] in ("queued", "processing"):
            assert time.monotonic() < deadline, "the upload job did not end"
            time.sleep(0.2)
    for instance in (first, second):  # both list it (B reads the records from the bucket)
        with instance.client("viewer") as client:
            assert upload_id in [v["id"] for v in client.get("/api/v1/videos").json()["videos"]]
            assert client.get(f"{BASE}/trajectories", params={"session_id": session_id}).json()["points"]

    deleted = apply_retention(lake_store, store, 1.0, now=datetime.now(timezone.utc) + timedelta(days=3))
    assert {d.kind for d in deleted} >= {"live_history", "upload"}
    assert ParquetLake(lake_store).live_keys("map_trajectories") == [] and store.list_keys("uploads/") == []
    for instance in (first, second):
        with instance.client("viewer") as client:
            assert upload_id not in [v["id"] for v in client.get("/api/v1/videos").json()["videos"]]
            assert client.get(f"/api/v1/videos/{upload_id}").status_code == 404
            assert client.get(f"{BASE}/trajectories", params={"session_id": session_id}).json()["points"] == []
