"""Acceptance: a live session on the sample, stopped after a few seconds (the issue says 30 s; a few
seconds of the 3-camera sample already give hundreds of boxes), leaves rows that ``spoton sql``
reads with ``source = 'live'``, that the history REST routes return and the review app's data
functions see; the writer's failure metric is exported."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from live_api_server import REPO_ROOT, LiveApiServer, auth, live_store  # noqa: F401

from spoton.sample import ENV_NAME
from spoton.storage.catalog import query
from spoton.storage.lake import ParquetLake
from spoton.storage.store import LocalStore

RUN_S = 4.0
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(live_store, tmp_path_factory):  # noqa: F811
    lake = tmp_path_factory.mktemp("live_history") / "lake"
    server = LiveApiServer(live_store, extra_env={"SPOTON_LAKE": str(lake), "SPOTON_HISTORY_FLUSH_S": "1"})
    server.wait_ready()
    yield server, lake, live_store
    server.stop()


def test_a_stopped_session_is_queryable_everywhere(served, tmp_path):
    server, lake, store = served
    session = server.create_session(tick_rate_hz=5)["session_id"]
    deadline = time.monotonic() + 30
    with server.client("viewer") as client:
        while time.monotonic() < deadline:  # the periodic flush writes before the session ends
            if ParquetLake(LocalStore(lake)).live_keys("camera_tracks"):
                break
            time.sleep(0.2)
        assert ParquetLake(LocalStore(lake)).live_keys("camera_tracks"), server.output()
        time.sleep(RUN_S)
        server.delete_session(session)
        metrics = httpx.get(f"{server.base}/metrics").text
        assert "spoton_live_history_write_failures_total 0.0" in metrics

        # spoton sql, its catalog built over the lake (--refresh)
        catalog = tmp_path / "spoton.duckdb"
        out = subprocess.run([sys.executable, "-m", "spoton.cli", "sql", "--catalog", str(catalog), "--refresh",
                              "--lake", str(lake), "select session_id, count(distinct camera), count(*), count(map_x) from camera_tracks "
                              "where source = 'live' group by session_id"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert session in out.stdout
        _, [(cameras, boxes, located)] = query(catalog, "select count(distinct camera), count(*), count(map_x) "
                                                        f"from camera_tracks where session_id = '{session}'")
        assert cameras == 3 and boxes >= 20 and located > 0  # a loaded 2-core machine: a few fps
        _, [(span,)] = query(catalog, f"select max(ts) - min(ts) from camera_tracks where session_id = '{session}'")
        assert span >= RUN_S - 1  # rows up to the stop: the last buffer was written on stop

        # the history REST routes
        base = f"/api/v1/environments/{ENV_NAME}"
        points = client.get(f"{base}/trajectories", params={"source": "live", "session_id": session}).json()["points"]
        assert len(points) > 10 and {p["source"] for p in points} == {"live"}
        heat = client.get(f"{base}/heatmap", params={"source": "live", "session_id": session}).json()
        assert heat["cells"] and sum(c["seconds"] for c in heat["cells"]) > 0
        occupancy = client.get(f"{base}/occupancy", params={"source": "live", "session_id": session}).json()
        assert occupancy["zones"] and occupancy["buckets"]
        assert client.get(f"{base}/heatmap", params={"format": "png", "source": "live"}).content[:4] == b"\x89PNG"

    # the review app's data functions
    sys.path.insert(0, str(REPO_ROOT / "apps" / "streamlit"))
    try:
        import review_data as rd
    finally:
        sys.path.pop(0)
    paths = rd.ReviewPaths(tmp_path, Path(store), lake, catalog, tmp_path / "dagster_home")
    sessions = rd.live_sessions(paths, ENV_NAME)
    assert session in sessions["session_id"].tolist()
    assert len(rd.trajectories(paths, ENV_NAME, "live", session)) == len(points)
    assert rd.trajectories(paths, ENV_NAME).empty  # no batch rows in this lake
    cells = rd.live_heatmap_cells(paths, rd.load_environment(paths, ENV_NAME), session)
    assert cells["seconds"].sum() > 0
