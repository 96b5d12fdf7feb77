"""History REST (trajectories, heatmap, occupancy) over a lake with batch and live rows: filters by
source, session, identity and time window; JSON and PNG heatmaps; bad input answers 4xx naming the
problem; viewers may read, anonymous clients may not."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from fastapi import FastAPI
from fastapi.testclient import TestClient
from live_api_server import live_store  # noqa: F401
from live_servers import API_KEYS, VIEWER

from apps.live_api import errors, history
from apps.live_api.auth import AuthConfig, Role
from spoton.live.history import HistoryConfig, LiveHistoryWriter
from spoton.records import CameraFrameResult, Detections, Tracks
from spoton.sample import ENV_NAME
from spoton.storage.catalog import LiveFileCache
from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import MAP_TRAJECTORIES
from spoton.storage.store import LocalStore

BASE = f"/api/v1/environments/{ENV_NAME}"
LIVE_T0 = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc).timestamp()
CROSSING = (-8.0, -7.0)  # inside the sample's "crossing" zone


def live_instant(writer, session, ts, positions):
    n = len(positions)
    tracks = Tracks(np.tile([[10, 20, 50, 120]], (n, 1)), np.arange(1, n + 1), np.full(n, 0.9), np.zeros(n), np.arange(n))
    result = CameraFrameResult("view_001", 0, 0.0, (768, 576), Detections.empty(), tracks, np.array(positions, float))
    writer.append(session, ENV_NAME, {"view_001": result}, {"view_001": np.arange(1, n + 1)}, {"view_001": ts})


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("history") / "lake"
    batch = pd.DataFrame({"global_id": [1] * 20 + [2] * 20, "ts": np.r_[np.arange(20) / 7, np.arange(20) / 7],
                          "map_x": [CROSSING[0]] * 20 + [0.0] * 20, "map_y": [CROSSING[1]] * 20 + [0.0] * 20,
                          "n_cameras": [1] * 40, "speed_mps": [0.0] * 40})
    ParquetLake(LocalStore(root)).write("map_trajectories", MAP_TRAJECTORIES.table(batch), ENV_NAME)
    writer = LiveHistoryWriter(LocalStore(root), HistoryConfig(flush_interval_s=3600))
    for k in range(30):  # 3 s at 10 Hz: global id 1 in the crossing, id 2 elsewhere
        live_instant(writer, "s-live1", LIVE_T0 + k / 10, [CROSSING, (1.0, 1.0)])
    writer.end_session("s-live1")
    live_instant(writer, "s-live2", LIVE_T0 + 60, [CROSSING])
    writer.close()
    return root


class ObjectsOnly:
    """A lake store DuckDB cannot glob (no local ``root``, as on S3): the routes read its objects
    through ``read_bytes``; ``reads`` counts them."""

    def __init__(self, store: LocalStore):
        self._store = store
        self.reads: list[str] = []

    def read_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return self._store.read_bytes(key)

    def __getattr__(self, name):
        if name == "root":
            raise AttributeError(name)
        return getattr(self._store, name)


@pytest.fixture(scope="module", params=["folder", "objects"])
def client(request, live_store, lake):  # noqa: F811
    """The routes over the lake read in place (a folder) and object by object (an S3 lake)."""
    app = FastAPI()
    errors.install(app)
    app.state.store = LocalStore(live_store)
    app.state.lake = ParquetLake(LocalStore(lake) if request.param == "folder" else ObjectsOnly(LocalStore(lake)))
    app.state.auth = AuthConfig(api_keys={k: Role.parse(r) for k, r in API_KEYS.items()})
    app.include_router(history.router)
    with TestClient(app) as client:
        yield client


def error(response, status: int, *needles: str) -> dict:
    assert response.status_code == status, response.text
    for needle in needles:
        assert needle in response.json()["detail"], response.json()
    return response.json()


def test_trajectories_by_source_session_identity_and_window(client):
    everything = client.get(f"{BASE}/trajectories", headers=VIEWER).json()
    assert {p["source"] for p in everything["points"]} == {"batch", "live"} and not everything["truncated"]
    assert len(everything["points"]) == 40 + 60 + 1
    live = client.get(f"{BASE}/trajectories", params={"source": "live", "session_id": "s-live1", "global_id": 1},
                      headers=VIEWER).json()["points"]
    assert len(live) == 30 and {(p["map_x"], p["map_y"]) for p in live} == {CROSSING}
    assert live[0]["ts"] == pytest.approx(LIVE_T0) and live[0]["session_id"] == "s-live1"
    iso = client.get(f"{BASE}/trajectories", headers=VIEWER, params={
        "source": "live", "from": "2026-12-03T10:00:01Z", "to": str(int((LIVE_T0 + 2) * 1000))}).json()
    assert len(iso["points"]) == 20 and iso["window"]["from_s"] == pytest.approx(LIVE_T0 + 1)
    batch = client.get(f"{BASE}/trajectories", params={"source": "batch", "from": "1000", "to": "2000"},
                       headers=VIEWER).json()["points"]  # the recording's second second
    assert len(batch) == 14 and all(1 <= p["ts"] < 2 for p in batch)
    by_session = client.get(f"{BASE}/trajectories", params={"session_id": "s-live2", "from": str(int(LIVE_T0 * 1000))},
                            headers=VIEWER).json()["points"]  # session_id means live
    assert len(by_session) == 1
    truncated = client.get(f"{BASE}/trajectories", params={"limit": 5}, headers=VIEWER).json()
    assert len(truncated["points"]) == 5 and truncated["truncated"]


def test_heatmap_json_grid_and_png(client):
    body = client.get(f"{BASE}/heatmap", params={"source": "live", "session_id": "s-live1", "cell_m": 1.0},
                      headers=VIEWER).json()
    ny, nx = body["shape"]
    assert len(body["grid"]) == ny and len(body["grid"][0]) == nx and body["cell_m"] == 1.0
    assert sum(map(sum, body["grid"])) == pytest.approx(6.0, abs=0.2)  # two people for 3 s
    hot = max(body["cells"], key=lambda c: c["seconds"])
    assert abs(hot["x_m"] - CROSSING[0]) <= 0.5 and abs(hot["y_m"] - CROSSING[1]) <= 0.5 and hot["people"] == 1
    for response in (client.get(f"{BASE}/heatmap", params={"format": "png"}, headers=VIEWER),
                     client.get(f"{BASE}/heatmap", headers={**VIEWER, "Accept": "image/png"})):
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    empty = client.get(f"{BASE}/heatmap", params={"source": "live", "from": "2030-01-01"}, headers=VIEWER).json()
    assert empty["cells"] == [] and not any(map(any, empty["grid"]))


def test_occupancy_per_zone_and_bucket(client):
    body = client.get(f"{BASE}/occupancy", params={"zone": "crossing", "source": "live", "session_id": "s-live1",
                                                   "bucket_s": 1}, headers=VIEWER).json()
    assert body["zones"] == ["crossing"] and len(body["buckets"]) == 3
    assert [b["people"] for b in body["buckets"]] == [1, 1, 1]
    assert body["buckets"][0]["mean_people"] == pytest.approx(1.0, abs=0.05)
    batch = client.get(f"{BASE}/occupancy", params={"source": "batch"}, headers=VIEWER).json()
    assert {b["zone"] for b in batch["buckets"]} == set(batch["zones"]) and len(batch["zones"]) >= 1


def test_an_object_lake_reads_only_the_files_a_query_can_need(live_store, lake, monkeypatch):  # noqa: F811
    store = ObjectsOnly(LocalStore(lake))
    app = FastAPI()
    errors.install(app)
    app.state.store, app.state.lake = LocalStore(live_store), ParquetLake(store)
    app.state.auth = AuthConfig(api_keys={k: Role.parse(r) for k, r in API_KEYS.items()})
    app.include_router(history.router)
    with TestClient(app) as client:
        points = client.get(f"{BASE}/trajectories", params={"session_id": "s-live2"}, headers=VIEWER).json()["points"]
        assert len(points) == 1 and store.reads and all("/s-live2-" in key for key in store.reads)
        store.reads.clear()
        assert client.get(f"{BASE}/trajectories", params={"source": "batch"}, headers=VIEWER).json()["points"]
        assert store.reads == [f"map_trajectories/{ENV_NAME}.parquet"]
        store.reads.clear()
        later = client.get(f"{BASE}/trajectories", params={"source": "live", "from": "2026-12-05"}, headers=VIEWER)
        assert later.json()["points"] == [] and store.reads == []  # the date folders are older
        app.state.live_file_cache = LiveFileCache(1 << 20)  # the app's, on an S3 lake
        first = client.get(f"{BASE}/trajectories", params={"source": "live"}, headers=VIEWER).json()["points"]
        assert len(first) == 61 and len(store.reads) == 2
        store.reads.clear()
        again = client.get(f"{BASE}/trajectories", params={"source": "live"}, headers=VIEWER).json()["points"]
        assert again == first and store.reads == []  # live files are never rewritten: read once
        assert len(client.get(f"{BASE}/trajectories", params={"source": "batch"}, headers=VIEWER).json()["points"]) == 40
        assert store.reads == [f"map_trajectories/{ENV_NAME}.parquet"]  # a batch partition can be replaced: read
        store.reads.clear()
        monkeypatch.setattr(history, "MAX_LAKE_OBJECTS", 1)  # too broad for an object lake: 422, nothing read
        error(client.get(f"{BASE}/heatmap", params={"source": "live"}, headers=VIEWER), 422, "session_id")
        assert store.reads == []


def test_bad_input_gets_4xx_naming_the_problem(client):
    error(client.get(f"{BASE}/occupancy", params={"zone": "nowhere"}, headers=VIEWER), 404, "nowhere", "crossing")
    error(client.get(f"{BASE}/trajectories", params={"from": "yesterday"}, headers=VIEWER), 422, "from=", "ISO 8601")
    error(client.get(f"{BASE}/trajectories", params={"from": "2026-12-03T11:00:00", "to": "2026-12-03T10:00:00",
                                                     "source": "live"},
                     headers=VIEWER), 422, "must be before")
    error(client.get(f"{BASE}/heatmap", params={"cell_m": 0.01}, headers=VIEWER), 422)
    # live rows on unix time, batch rows on the recording's clock: a window says which
    error(client.get(f"{BASE}/trajectories", params={"to": "2026-12-03T10:00:00Z"}, headers=VIEWER), 422,
          "to= needs source=live or source=batch")
    error(client.get(f"{BASE}/heatmap", params={"from": "2026-12-03", "source": "batch"}, headers=VIEWER), 422,
          "from='2026-12-03' with source=batch", "milliseconds from the recording's start")
    error(client.get(f"{BASE}/heatmap", params={"cell_m": 0.1}, headers=VIEWER), 422, "cell_m >=")
    error(client.get(f"{BASE}/trajectories", params={"source": "both"}, headers=VIEWER), 422)
    error(client.get(f"{BASE}/occupancy", params={}, headers=VIEWER), 422, "buckets")  # batch from 0 + live unix
    error(client.get("/api/v1/environments/nope/heatmap", headers=VIEWER), 404, "GET /api/v1/environments")
    error(client.get("/api/v1/environments/..%2Fx/trajectories", headers=VIEWER), 404)
    assert client.get(f"{BASE}/trajectories").status_code == 401


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["trajectories", "heatmap", "occupancy"]),
       start=st.one_of(st.none(), st.text(max_size=40), st.integers(-10**17, 10**17).map(str),
                       st.datetimes().map(lambda d: d.isoformat())),
       end=st.one_of(st.none(), st.text(max_size=40), st.datetimes().map(lambda d: d.isoformat() + "Z")),
       number=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=8)),
       zone=st.one_of(st.none(), st.text(max_size=20), st.just("crossing")),
       source=st.one_of(st.none(), st.sampled_from(["batch", "live", "x"])))
def test_any_query_gets_an_answer_never_a_server_error(client, route, start, end, number, zone, source):
    """Query strings off any distribution on an environment with data: 2xx or a 4xx, never 5xx."""
    params = {"from": start, "to": end, "source": source, "zone": zone, "cell_m": number, "bucket_s": number,
              "global_id": number if route == "trajectories" else None}
    response = client.get(f"{BASE}/{route}", params={k: v for k, v in params.items() if v is not None},
                          headers=VIEWER)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["detail"]
