"""Site camera uploads as jobs over a real store folder: the body (or an /api/v1/videos upload)
becomes a queued job that ends done (the camera and its sub-videos in the site, the path taken
recorded) or failed with the reason; bad requests are refused before any work; jobs survive a
restart; the metrics count them."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from live_servers import ADMIN, API_KEYS, OPERATOR, VIEWER  # noqa: F401
from prometheus_client import generate_latest

from apps.live_api import errors, media, site_jobs, sites, uploads
from apps.live_api.auth import AuthConfig, Role
from apps.live_api.health import LiveMetrics
from spoton.site import ingest
from spoton.site.onboarding import create_site
from spoton.site.storage import current_version, load_environment
from spoton.storage.store import LocalStore
from spoton.video import iter_frames, probe

PLAN = (Path(__file__).resolve().parents[3] / "data" / "environments" / "pets_s2l1" / "floor_plan.png").read_bytes()
H264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "10")
SITES = "/api/v1/sites"
STATES = ["queued", "processing", "done"]


@pytest.fixture
def store(tmp_path):
    store = LocalStore(tmp_path / "store")
    create_site(store, "plaza", PLAN, 0.05, segment_length_s=1.0)  # the sample is 10 fps: 10-frame segments
    return store


@pytest.fixture
def app(store):
    app = FastAPI()
    errors.install(app)
    app.state.store, app.state.metrics = store, LiveMetrics()
    app.state.auth = AuthConfig(api_keys={k: Role.parse(r) for k, r in API_KEYS.items()})
    app.state.uploads = uploads.UploadService(store, uploads.UploadConfig(max_duration_s=10.0, max_bytes=4_000_000))
    for router in (sites.router, site_jobs.router, uploads.router, media.router):
        app.include_router(router)
    yield app
    if getattr(app.state, "site_jobs", None) is not None:
        app.state.site_jobs.close()
    app.state.uploads.close()


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


def upload(client, body: bytes, name="north", site="plaza", headers=OPERATOR, **params):
    return client.post(f"{SITES}/{site}/cameras/upload", params={"name": name, **params}, content=body,
                       headers={**headers, "Content-Type": "video/mp4"})


def follow(client, url: str, timeout_s: float = 60.0) -> tuple[dict, list[str]]:
    """Poll a job to its end: (its last record, the states seen in order)."""
    seen, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(url, headers=VIEWER).json()
        if not seen or seen[-1] != job["state"]:
            seen.append(job["state"])
        if job["state"] in ("done", "failed"):
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"job {url} did not end within {timeout_s} s: {seen}")


def error(response, status: int, *needles: str) -> dict:
    assert response.status_code == status, response.text
    for needle in needles:
        assert needle in response.json()["detail"], response.json()
    return response.json()


def test_an_uploaded_h264_video_becomes_a_camera_by_stream_copy_in_a_job(app, client, store, sample_clip):
    clip = sample_clip("gop10.mp4", *H264)
    answer = upload(client, clip.read_bytes())
    assert answer.status_code == 202, answer.text
    queued = answer.json()
    assert queued["state"] == "queued" and queued["progress"] == 0 and queued["camera"] == "north"
    assert answer.headers["location"] == queued["url"] == f"{SITES}/plaza/jobs/{queued['id']}"
    job, seen = follow(client, queued["url"])
    assert seen == [s for s in STATES if s in seen], f"states go forward only: {seen}"
    assert job["state"] == "done" and job["progress"] == 1 and job["stage"] == "done" and job["reason"] is None
    assert job["segments"] == 3 and job["path"] == "copy" and "keyframes" in job["path_reason"]
    assert job["created_at"] <= job["updated_at"]

    camera = client.get(f"{SITES}/plaza", headers=VIEWER).json()["cameras"][0]
    assert camera["name"] == "north" and len(camera["sub_videos"]) == 3
    assert sum(probe(store.local_path(k), exact_count=True).frame_count for k in camera["sub_videos"]) == 25
    assert store.list_keys(f"site_jobs/{job['id']}/") == [f"site_jobs/{job['id']}/job.json"], \
        "the job's copy of the body goes once the sub-videos hold it"
    assert client.get(f"{SITES}/plaza/jobs", headers=VIEWER).json() == {"jobs": [job]}

    app.state.metrics.refresh({}, None, app.state.site_jobs)
    text = generate_latest(app.state.metrics.registry).decode()
    assert 'spoton_live_site_jobs{state="done"} 1.0' in text
    assert 'spoton_live_site_job_paths_total{path="copy"} 1.0' in text


def test_an_mjpeg_upload_id_is_transcoded_in_a_job(client, store, sample_clip):
    uploaded = client.post("/api/v1/videos", content=sample_clip("mjpeg.avi", "-c:v", "mjpeg").read_bytes(),
                           headers={**ADMIN, "Content-Type": "application/octet-stream"}).json()
    answer = client.post(f"{SITES}/plaza/cameras", json={"name": "south", "kind": "upload", "uri": uploaded["id"]},
                         headers=OPERATOR)
    assert answer.status_code == 202 and answer.json()["state"] == "queued", answer.text
    job, _ = follow(client, answer.json()["url"])
    assert job["state"] == "done" and job["path"] == "transcode" and "mjpeg" in job["path_reason"], job
    keys = load_environment(store, "plaza").camera("south") and store.list_keys("plaza/south/")
    infos = [probe(store.local_path(k), exact_count=True) for k in keys]
    assert [i.codec for i in infos] == ["h264"] * 3 and [i.frame_count for i in infos] == [10, 10, 5]
    assert sum(1 for k in keys for _ in iter_frames(store.local_path(k))) == 25
    assert store.exists(uploaded["video_key"]), "an /api/v1/videos upload stays: it is not the job's"


def test_a_non_video_ends_failed_with_the_reason_and_changes_nothing(client, store):
    answer = upload(client, b"this is a text file, not a video\n" * 40)
    assert answer.status_code == 202, answer.text
    job, seen = follow(client, answer.json()["url"])
    assert job["state"] == "failed" and seen[-1] == "failed"
    assert "camera 'north'" in job["reason"] and "not a readable video" in job["reason"], job
    assert "site_jobs" not in job["reason"] and str(store.root) not in job["reason"], "no server path"
    assert current_version(store, "plaza") == 1 and store.list_keys("plaza/north/") == []
    assert store.list_keys(f"site_jobs/{job['id']}/") == [f"site_jobs/{job['id']}/job.json"]


def test_bad_requests_are_refused_before_any_work(client, store, sample_clip):
    body = sample_clip("gop10.mp4", *H264).read_bytes()
    error(upload(client, body, headers=VIEWER), 403)
    error(upload(client, body, site="nowhere"), 404, "no site 'nowhere'")
    error(upload(client, body, name="../x"), 422, "name")
    error(upload(client, b""), 400, "empty upload")
    error(upload(client, b"\0" * 4_000_001), 413, "larger than 4000000 bytes")
    error(client.get(f"{SITES}/plaza/jobs/{'0' * 32}", headers=VIEWER), 404, "no job")
    assert client.get(f"{SITES}/plaza/jobs", headers=VIEWER).json() == {"jobs": []}, "nothing was queued"
    error(client.get(f"{SITES}/nowhere/jobs", headers=VIEWER), 404, "no site 'nowhere'")

    first = upload(client, body)
    assert first.status_code == 202
    error(upload(client, body), 409, "north")  # queued or processing, or already added: refused either way
    error(client.get(f"{SITES}/elsewhere/jobs/{first.json()['id']}", headers=VIEWER), 404, "no job")
    assert follow(client, first.json()["url"])[0]["state"] == "done"
    error(upload(client, body), 409, "already has a camera 'north'")
    assert [j["id"] for j in client.get(f"{SITES}/plaza/jobs", headers=VIEWER).json()["jobs"]] == [first.json()["id"]]


def test_jobs_interrupted_by_a_stop_or_a_kill_resume_at_the_next_start(store, sample_clip):
    clip = sample_clip("mjpeg.avi", "-c:v", "mjpeg")
    service = site_jobs.SiteJobService(store)
    stopped = service.submit_file("plaza", "north", clip)
    service.close()  # mid-job (a transcode takes far longer than this): back to queued
    record = json.loads(store.read_bytes(site_jobs.job_key(stopped.id)))
    assert record["state"] == "queued" and store.list_keys("plaza/north/") == []

    killed = json.loads(store.read_bytes(site_jobs.job_key(stopped.id))) | {
        "id": "f" * 32, "camera": "south", "state": "processing", "stage": "transcoding", "progress": 0.5,
        "video_key": "site_jobs/" + "f" * 32 + "/video"}
    store.upload_file(clip, killed["video_key"])
    store.write_bytes(site_jobs.job_key(killed["id"]), json.dumps(killed).encode())
    store.write_bytes("plaza/south/sub_video_01.mp4", b"what the killed job had written")
    # killed after saving its camera, before recording done: recorded done, not re-run into a 409
    registered = killed | {"id": "e" * 32, "camera": "east", "stage": "registering", "progress": 0.99,
                           "video_key": "site_jobs/" + "e" * 32 + "/video"}
    store.upload_file(clip, registered["video_key"])
    ingest.add_video_camera(store, "plaza", "east", clip)
    store.write_bytes(site_jobs.job_key(registered["id"]), json.dumps(registered).encode())

    service = site_jobs.SiteJobService(store)
    try:
        deadline = time.monotonic() + 60
        while any(r.state != "done" for r in service.list()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {r.camera: (r.state, r.segments) for r in service.list("plaza")} == {
            "north": ("done", 3), "south": ("done", 3), "east": ("done", 3)}
        assert not store.exists(registered["video_key"]), "the job's own copy of the video goes once done"
    finally:
        service.close()
    assert [probe(store.local_path(k)).frame_count for k in store.list_keys("plaza/south/")] == [10, 10, 5]


@pytest.mark.integration
def test_a_real_server_runs_the_job_through_a_restart_and_counts_it(tmp_path, sample_clip):
    """uvicorn and the app factory: a job stopped with the server (SIGTERM) is left queued, never
    processing, and the next server on the store finishes it."""
    from live_api_server import LiveApiServer

    store_root = tmp_path / "store"
    create_site(LocalStore(store_root), "plaza", PLAN, 0.05, segment_length_s=1.0)
    clip = sample_clip("mjpeg100.avi", "-c:v", "mjpeg", frames=100)
    server = LiveApiServer(store_root).wait_ready()
    try:
        with server.client("operator") as operator:
            answer = operator.post(f"{SITES}/plaza/cameras/upload", params={"name": "north"},
                                   content=clip.read_bytes(), headers={"Content-Type": "application/octet-stream"})
        assert answer.status_code == 202, answer.text
    finally:
        server.stop()
    job_id = answer.json()["id"]
    stopped = json.loads(LocalStore(store_root).read_bytes(site_jobs.job_key(job_id)))
    assert stopped["state"] in ("queued", "done"), stopped

    server = LiveApiServer(store_root).wait_ready()
    try:
        with server.client("viewer") as viewer:
            deadline = time.monotonic() + 60
            while (job := viewer.get(answer.json()["url"]).json())["state"] not in ("done", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
            assert job["state"] == "done" and job["segments"] == 10 and job["path"] == "transcode", job
            assert [c["name"] for c in viewer.get(f"{SITES}/plaza").json()["cameras"]] == ["north"]
        with server.client("admin") as admin:
            assert 'spoton_live_site_jobs{state="done"} 1.0' in admin.get("/metrics").text
    finally:
        server.stop()
