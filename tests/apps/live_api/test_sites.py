"""/api/v1/sites over a real store folder: a site from the sample's floor plan, a camera from an
uploaded video and one from a live MJPEG stream, calibration checked then saved, region, zones,
versions restored, rename and delete; refused input answers 4xx naming the problem, changes
nothing, and a camera's password never comes back."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from live_servers import ADMIN, API_KEYS, OPERATOR, VIEWER, free_port, mjpeg_server, sample_jpegs  # noqa: F401

from apps.live_api import errors, me, media, site_jobs, sites, uploads
from apps.live_api.auth import AuthConfig, Role
from spoton.site.storage import current_version, list_versions, load_environment
from orchestration.services import SeaweedServer, ServiceError
from spoton.storage.store import LocalStore, S3Store, s3_client
from spoton.video import encode_h264, iter_frames, probe

REPO_ROOT = Path(__file__).resolve().parents[3]
PLAN = (REPO_ROOT / "data" / "environments" / "pets_s2l1" / "floor_plan.png").read_bytes()
PAIRS = json.loads((REPO_ROOT / "data" / "calibration" / "pets_s2l1_view_001.json").read_text())
SITES = "/api/v1/sites"


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    """A SeaweedFS of the module's own (started only for the tests run on S3)."""
    try:
        server = SeaweedServer(tmp_path_factory.mktemp("seaweed"), "sites-test", "sites-test-secret").start()
    except ServiceError as error:
        pytest.skip(str(error))
    yield server
    server.stop()


@pytest.fixture
def store(request, tmp_path):
    """A store folder, or (parametrized ``"s3"``) a bucket whose local cache folder must stay empty."""
    if getattr(request, "param", "local") == "local":
        return LocalStore(tmp_path / "store")
    server = request.getfixturevalue("seaweed")
    client = s3_client(endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=server.access,
                       aws_secret_access_key=server.secret)
    s3 = S3Store(client, "sites-test", tmp_path.name, cache_dir=tmp_path / "s3-cache")
    s3.ensure_bucket()
    return s3


@pytest.fixture
def client(store):
    app = FastAPI()
    errors.install(app)
    app.state.store = store
    app.state.auth = AuthConfig(api_keys={k: Role.parse(r) for k, r in API_KEYS.items()})
    app.state.uploads = uploads.UploadService(store, uploads.UploadConfig(max_duration_s=10.0))
    for router in (sites.router, site_jobs.router, uploads.router, media.router, me.router):
        app.include_router(router)
    with TestClient(app) as client:
        yield client
    if getattr(app.state, "site_jobs", None) is not None:
        app.state.site_jobs.close()
    app.state.uploads.close()


def create(client, name="plaza", headers=OPERATOR, body=PLAN, **params):
    params = {"name": name, "scale_points": "0,0,200,0", "distance_m": 10, "origin_m": "-22,20", "y_axis": "up",
              "segment_length_s": 1} | params
    params = {k: v for k, v in params.items() if v is not None}
    return client.post(SITES, params=params, content=body, headers={**headers, "Content-Type": "image/png"})


def wait_for_job(client, url: str, timeout_s: float = 60.0) -> dict:
    """Poll a site job until it is done or failed; returns its last record."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(url, headers=VIEWER)
        assert job.status_code == 200, job.text
        if job.json()["state"] in ("done", "failed") or time.monotonic() > deadline:
            return job.json()
        time.sleep(0.05)


def error(response, status: int, *needles: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    for needle in needles:
        assert needle in body["detail"], body
    return body


@pytest.mark.parametrize("store", ["local", "s3"], indirect=True)
def test_a_site_from_an_uploaded_video_is_calibrated_zoned_and_versioned(client, store, sample_video, tmp_path):
    """On a folder and on S3 alike (uploads decoded, cut, snapshotted and copied with no local copy)."""
    assert create(client, headers=VIEWER).status_code == 403, "viewers look, operators edit"
    site = create(client)
    assert site.status_code == 201, site.text
    assert site.json()["floor_plan"]["metres_per_pixel"] == pytest.approx(0.05)
    assert client.get(site.json()["floor_plan"]["image_url"], headers=VIEWER).content == PLAN

    clip = encode_h264((f.image for f in iter_frames(sample_video, stop=14)), tmp_path / "clip.mp4", 7.0)
    uploaded = client.post("/api/v1/videos", content=clip.read_bytes(),
                           headers={**ADMIN, "Content-Type": "application/octet-stream"}).json()
    camera = client.post(f"{SITES}/plaza/cameras", json={"name": "north", "kind": "upload", "uri": uploaded["id"]},
                         headers=OPERATOR)
    assert camera.status_code == 202, camera.text
    assert camera.headers["location"] == camera.json()["url"]
    job = wait_for_job(client, camera.json()["url"])
    assert job["state"] == "done" and job["segments"] == 2 and job["path"] == "transcode", job
    videos = client.get(f"{SITES}/plaza", headers=VIEWER).json()["cameras"][0]["sub_videos"]
    assert videos == ["plaza/north/sub_video_01.mp4", "plaza/north/sub_video_02.mp4"]
    assert [probe(store.video_source(k)).frame_count for k in videos] == [7, 7]
    snapshot = client.get(f"{SITES}/plaza/cameras/north/snapshot", headers=VIEWER)
    assert snapshot.headers["content-type"] == "image/jpeg" and snapshot.content[:3] == b"\xff\xd8\xff"

    pairs = {"image_points": PAIRS["image_points"], "map_points": PAIRS["map_points"]}
    checked = client.post(f"{SITES}/plaza/cameras/north/calibration/check", json=pairs, headers=VIEWER).json()
    assert checked["rms_error_m"] < 0.3 and len(checked["point_errors_m"]) == 15 and checked["version"] is None
    assert current_version(store, "plaza") == 2, "a check saves nothing"
    few = {"image_points": PAIRS["image_points"][:3], "map_points": PAIRS["map_points"][:3]}
    error(client.put(f"{SITES}/plaza/cameras/north/calibration", json=few, headers=OPERATOR), 422, "at least 4")
    saved = client.put(f"{SITES}/plaza/cameras/north/calibration", json=pairs, headers=OPERATOR).json()
    assert saved["version"] == 3 and saved["rms_error_m"] == pytest.approx(checked["rms_error_m"])
    shown = client.get(f"{SITES}/plaza", headers=VIEWER).json()["cameras"][0]["calibration"]  # the page's grid
    assert shown["image_points"] == [list(p) for p in PAIRS["image_points"]]
    assert np.allclose(shown["image_to_map"], saved["image_to_map"])

    region = {"polygon": [[0, 200], [767, 200], [767, 575], [0, 575]]}
    assert client.put(f"{SITES}/plaza/cameras/north/region", json=region, headers=OPERATOR).json()["version"] == 4
    bowtie = {"name": "crossing", "polygon_m": [[-11, -10], [-5, -4], [-5, -10], [-11, -4]]}
    error(client.put(f"{SITES}/plaza/zones", json=bowtie, headers=OPERATOR), 422, "crosses itself")
    zone = {"name": "crossing", "polygon_m": [[-11, -10.5], [-5, -10.5], [-5, -3.5], [-11, -3.5]]}
    assert client.put(f"{SITES}/plaza/zones", json=zone, headers=OPERATOR).json()["version"] == 5
    env = load_environment(store, "plaza")
    assert env.camera("north").tracked_region_m is not None and [z.name for z in env.zones] == ["crossing"]

    versions = client.get(f"{SITES}/plaza/versions", headers=VIEWER).json()
    assert versions == {"site": "plaza", "current": 5, "versions": [1, 2, 3, 4, 5]}
    assert client.post(f"{SITES}/plaza/versions/2/restore", headers=OPERATOR).json()["version"] == 6
    assert load_environment(store, "plaza").camera("north").calibration is None, "version 2 was uncalibrated"
    error(client.post(f"{SITES}/plaza/versions/9/restore", headers=OPERATOR), 404, "no version 9")

    disabled = client.put(f"{SITES}/plaza/cameras/north/enabled", json={"enabled": False}, headers=OPERATOR)
    assert disabled.json()["version"] == 7 and load_environment(store, "plaza").camera("north").enabled is False
    assert client.get(f"{SITES}/plaza", headers=VIEWER).json()["cameras"][0]["enabled"] is False
    assert client.put(f"{SITES}/plaza/cameras/north/enabled", json={"enabled": True}, headers=OPERATOR).json() == {
        "site": "plaza", "version": 8}
    error(client.post(f"{SITES}/plaza/cameras/north/rename", json={"name": "gate"}, headers=OPERATOR), 409,
          "videos stored under its name")
    renamed = client.post(f"{SITES}/plaza/rename", json={"name": "square"}, headers=OPERATOR)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["cameras"][0]["source"]["uri"] == "square/north/sub_video_01.mp4"
    assert [s["name"] for s in client.get(SITES, headers=VIEWER).json()["sites"]] == ["square"]
    assert client.delete(f"{SITES}/square", headers=OPERATOR).status_code == 204
    assert client.get(SITES, headers=VIEWER).json()["sites"] == []
    assert list_versions(store, "square") == [1], "a deleted site keeps its history"
    assert store.exists("square/north/sub_video_01.mp4")
    assert not (tmp_path / "s3-cache").exists()  # on S3: nothing was copied to local disk


def test_me_tells_the_pages_the_callers_role_and_no_key(client):
    assert client.get("/api/v1/me").status_code == 401
    for headers, role in ((VIEWER, "viewer"), (OPERATOR, "operator"), (ADMIN, "admin")):
        answer = client.get("/api/v1/me", headers=headers)
        assert answer.json()["role"] == role
        assert headers["Authorization"].split()[1] not in answer.text, "never the key itself"


def test_refused_sites_answer_4xx_and_change_nothing(client, store):
    error(create(client, body=b"not an image"), 415, "not a PNG or JPEG")
    error(create(client, scale_points=None, distance_m=None), 422, "scale")
    error(create(client, name="../etc"), 422, "query.name")
    error(create(client, origin_m="1"), 422, "origin_m")
    assert create(client).status_code == 201
    error(create(client), 409, "already exists")
    error(client.get(f"{SITES}/nowhere", headers=VIEWER), 404, "no site 'nowhere'")
    error(client.post(f"{SITES}/plaza/cameras", json={"name": "north", "kind": "upload", "uri": "0" * 32},
                      headers=OPERATOR), 404, "no upload")
    error(client.put(f"{SITES}/plaza/cameras/north/calibration",
                     json={"image_points": PAIRS["image_points"], "map_points": PAIRS["map_points"]},
                     headers=OPERATOR), 404, "no camera 'north'")
    assert current_version(store, "plaza") == 1


def test_a_stream_camera_is_tested_added_and_never_shows_its_password(client, store, mjpeg_server):
    assert create(client).status_code == 201
    secret = mjpeg_server.url.replace("http://", "http://admin:s3cret@")
    shot = client.post(f"{SITES}/plaza/cameras/test", json={"kind": "http", "uri": secret}, headers=OPERATOR)
    assert shot.status_code == 200, shot.text
    assert shot.content[:3] == b"\xff\xd8\xff"
    added = client.post(f"{SITES}/plaza/cameras", json={"name": "gate", "kind": "http", "uri": secret},
                        headers=OPERATOR)
    assert added.status_code == 201, added.text
    assert added.json()["cameras"][0]["source"]["uri"] == mjpeg_server.url.replace("http://", "http://admin:***@")
    assert added.json()["cameras"][0]["resolution"] == [384, 288]
    listed = client.get(SITES, headers=VIEWER).text
    assert "s3cret" not in listed and "s3cret" not in client.get(f"{SITES}/plaza", headers=VIEWER).text
    assert load_environment(store, "plaza").camera("gate").source.uri == secret, "sessions need the password"

    refused = client.post(f"{SITES}/plaza/cameras/test",
                          json={"kind": "rtsp", "uri": f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/live"},
                          headers=OPERATOR)
    body = error(refused, 422, "connection refused", "***")
    assert "s3cret" not in json.dumps(body)
    error(client.post(f"{SITES}/plaza/cameras", json={"name": "gate", "kind": "http", "uri": secret},
                      headers=OPERATOR), 409, "already has a camera")
    assert current_version(store, "plaza") == 2


@pytest.mark.integration
def test_a_live_session_on_a_new_stream_site_sends_ticks_with_map_coordinates(tmp_path, mjpeg_server):
    """A real server on an empty store: a site, a stream camera calibrated over REST, then a session."""
    import asyncio

    from live_api_server import LiveApiServer, next_message, ws_connect

    server = LiveApiServer(tmp_path / "store").wait_ready()
    try:
        with server.client("operator") as operator, server.client("admin") as admin:
            created = operator.post(SITES, params={"name": "gate", "metres_per_pixel": 0.05, "origin_m": "-22,20",
                                                   "y_axis": "up"}, content=PLAN)
            assert created.status_code == 201, created.text
            error(admin.post("/api/v1/sessions", json={"environment": "gate"}), 422, "no enabled camera")
            camera = operator.post(f"{SITES}/gate/cameras", json={"name": "door", "kind": "http",
                                                                  "uri": mjpeg_server.url})
            assert camera.status_code == 201, camera.text
            half = {"image_points": [[x / 2, y / 2] for x, y in PAIRS["image_points"]],  # the stream is half size
                    "map_points": PAIRS["map_points"]}
            assert operator.put(f"{SITES}/gate/cameras/door/calibration", json=half).json()["rms_error_m"] < 0.3
            session = admin.post("/api/v1/sessions", json={"environment": "gate"})
            assert session.status_code == 201, session.text
            assert session.json()["status"]["cameras"]["door"]["source"]["kind"] == "http"

        def placed(tick: dict) -> list[dict]:
            return [t["map"] for t in tick["cameras"].get("door", {}).get("tracks", []) if t["map"] is not None]

        async def located_tick() -> dict:
            async with ws_connect(server, session.json()["session_id"]) as ws:
                return await next_message(ws, "tick", timeout_s=60, where=placed)
        points = placed(asyncio.run(located_tick()))
        assert all(-22 <= p["x"] <= 13 and -20 <= p["y"] <= 20 for p in points), points
    finally:
        server.stop()
