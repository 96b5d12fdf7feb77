"""Uploads into a real store folder: streamed bodies, content probing, limits, the frame
extraction job (queued -> processing -> done | failed), restart survival and resolve_upload."""
from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import threading
import time

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from live_api_server import live_server, live_store  # noqa: F401 (fixtures)
from live_servers import ADMIN, OPERATOR, VIEWER, free_port, routers_app

from apps.live_api.media import media_url
from apps.live_api.uploads import UploadConfig, UploadError, UploadRecord, UploadService, resolve_upload
from spoton.live.sources import SourceError, SourceSpec, open_source
from spoton.storage.retention import apply_retention
from spoton.storage.store import LocalStore
from spoton.video import encode_h264, iter_frames

CONFIG = UploadConfig(max_bytes=2_000_000, max_duration_s=10.0, frame_interval_s=1.0)


@pytest.fixture(scope="module")
def clip(sample_video, tmp_path_factory):
    """3.5 s (35 frames at 10 fps) of the sample video, H.264 MP4 with the index first."""
    path = tmp_path_factory.mktemp("upload") / "clip.mp4"
    return encode_h264((f.image for f in iter_frames(sample_video, stop=35)), path, 10.0)


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


@pytest.fixture
def client(store):
    app = routers_app(store, CONFIG)
    with TestClient(app) as client:
        yield client
    app.state.uploads.close()


def upload(client, data, headers=ADMIN, **params):
    return client.post("/api/v1/videos", content=data, params=params,
                       headers={**headers, "Content-Type": "application/octet-stream"})


def wait_state(client, upload_id, states=("done", "failed"), timeout_s=60.0, headers=VIEWER) -> dict:
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/videos/{upload_id}", headers=headers).json()
        if not seen or seen[-1] != body["state"]:
            seen.append(body["state"])
        if body["state"] in states:
            body["seen"] = seen
            return body
        time.sleep(0.05)
    raise AssertionError(f"upload {upload_id} stayed in {seen}")


def test_upload_extracts_frames_thumbnail_and_metadata(client, clip, store):
    response = upload(client, clip.read_bytes(), filename="walkway.avi")  # the name is not trusted
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["state"] in ("queued", "processing") and queued["filename"] == "walkway.avi"
    assert queued["video_key"].endswith("/video.mp4")  # the container sniffed from the bytes
    assert store.read_bytes(queued["video_key"]) == clip.read_bytes()
    done = wait_state(client, queued["id"])
    assert done["state"] == "done", done
    assert done["video"] == {"codec": "h264", "width": 768, "height": 576, "fps": 10.0,
                             "frame_count": 35, "duration_s": 3.5}
    frames = client.get(done["frames_url"], headers=VIEWER).json()["frames"]
    assert [f["index"] for f in frames] == [0, 10, 20, 30]  # one per second
    assert [f["ts"] for f in frames] == [0.0, 1.0, 2.0, 3.0]
    jpeg = client.get(frames[2]["url"], headers=VIEWER)
    assert jpeg.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(jpeg.content, np.uint8), cv2.IMREAD_COLOR)
    original = next(iter_frames(clip, start=20, stop=21)).image
    assert image.shape == (576, 768, 3) and np.abs(image.astype(int) - original).mean() < 6
    thumb = client.get(done["thumbnail_url"], headers=VIEWER)
    assert cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
    listed = client.get("/api/v1/videos", headers=VIEWER).json()["videos"]
    assert [v["id"] for v in listed] == [queued["id"]]
    # the record in the store says the same (it survives a restart)
    stored = json.loads(store.read_bytes(f"uploads/{queued['id']}/upload.json"))
    assert stored["state"] == "done" and len(stored["frames"]) == 4
    assert resolve_upload(queued["id"], store) == queued["video_key"]


def test_non_video_is_refused_by_content_not_name(client, store):
    response = upload(client, b"just some text, not a video\n" * 100, filename="movie.mp4")
    assert response.status_code == 415 and "not a usable video" in response.json()["detail"]
    assert store.list_keys("uploads/") == []


def test_truncated_mp4_without_its_index_is_refused(client, clip, tmp_path):
    plain = tmp_path / "moov_last.mp4"  # the index (moov) at the end, as cameras write it
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(clip), "-c", "copy",
                    str(plain)], check=True)
    data = plain.read_bytes()
    response = upload(client, data[: len(data) // 2])
    assert response.status_code == 415
    assert "truncated" in response.json()["detail"]


def test_truncated_mp4_with_index_first_fails_its_job_with_the_reason(client, clip, store):
    data = clip.read_bytes()
    response = upload(client, data[: len(data) // 2])  # header intact, half the frames gone
    assert response.status_code == 202, response.text
    failed = wait_state(client, response.json()["id"])
    assert failed["state"] == "failed" and "truncated" in failed["error"]
    assert "partial file" in failed["error"] and "/" not in failed["error"]  # ffmpeg's reason, no path
    assert failed["seen"][-1] == "failed"
    frames = client.get(failed["frames_url"], headers=VIEWER)
    assert frames.status_code == 409 and "truncated" in frames.json()["detail"]
    # the video, thumbnail and partial frames are gone: a failed upload's media is never served
    assert store.list_keys(f"uploads/{failed['id']}/") == [f"uploads/{failed['id']}/upload.json"]
    assert failed["video_url"] is None and failed["thumbnail_url"] is None
    assert client.get(media_url(failed["video_key"]), headers=VIEWER).status_code == 404
    assert client.get(media_url(f"uploads/{failed['id']}/thumbnail.jpg"), headers=VIEWER).status_code == 404
    with pytest.raises(UploadError, match="failed"):  # a session camera {"kind": "upload"}
        resolve_upload(failed["id"], store)
    with pytest.raises(SourceError, match="no object"):  # nor by its store key
        open_source(SourceSpec("store", failed["video_key"]), store=store)


@pytest.fixture(scope="module")
def short_mkv(clip, tmp_path_factory):
    """The first 2 s of the clip remuxed into MKV: its header declares 24 frames, 22 decode."""
    path = tmp_path_factory.mktemp("mkv") / "ok.mkv"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(clip), "-t", "2",
                    "-c", "copy", str(path)], check=True)
    return path


def test_valid_short_mkv_whose_header_overcounts_is_accepted(client, short_mkv):
    """Bug 7: container frame counts are estimates; decoding to the end without error is what counts."""
    response = upload(client, short_mkv.read_bytes(), filename="ok.mkv")
    assert response.status_code == 202, response.text
    assert response.json()["video"]["frame_count"] > 22  # the header's estimate
    done = wait_state(client, response.json()["id"])
    assert done["state"] == "done", done
    assert done["video_key"].endswith("/video.mkv") and done["video"]["frame_count"] == 22
    assert done["frame_count_extracted"] == 3  # frames 0, 10, 20


def test_truncated_mkv_fails_its_job_with_the_reason(client, short_mkv, store):
    data = short_mkv.read_bytes()
    response = upload(client, data[: len(data) * 2 // 3])
    assert response.status_code == 202, response.text
    failed = wait_state(client, response.json()["id"])
    assert failed["state"] == "failed" and "truncated" in failed["error"]
    assert "File ended prematurely" in failed["error"] and "/" not in failed["error"]  # no server path
    assert store.list_keys(f"uploads/{failed['id']}/frames/") == []


def test_delete_removes_record_video_thumbnail_and_frames(client, clip, store):
    done = wait_state(client, upload(client, clip.read_bytes()).json()["id"])
    assert done["state"] == "done" and len(store.list_keys(f"uploads/{done['id']}/")) == 7
    url = f"/api/v1/videos/{done['id']}"
    assert client.delete(url, headers=VIEWER).status_code == 403
    assert client.delete(url).status_code == 401
    assert client.delete(url, headers=OPERATOR).status_code == 204
    assert store.list_keys("uploads/") == []
    assert client.get(url, headers=VIEWER).status_code == 404
    assert client.get(done["video_url"], headers=VIEWER).status_code == 404
    assert client.get(done["thumbnail_url"], headers=VIEWER).status_code == 404
    assert client.get("/api/v1/videos", headers=VIEWER).json()["videos"] == []
    assert client.delete(url, headers=OPERATOR).status_code == 404
    with pytest.raises(UploadError, match="no upload"):
        resolve_upload(done["id"], store)
    assert UploadService(store, CONFIG).list() == []  # nothing comes back after a restart


def test_uploads_retention_deleted_leave_the_running_apps_lists(client, clip, store, tmp_path):
    """Retention deletes in the store behind the app's back: the app's list, its GETs and its quota
    follow the store (and a job's late write does not bring the record back)."""
    done = wait_state(client, upload(client, clip.read_bytes()).json()["id"])
    kept = wait_state(client, upload(client, clip.read_bytes()).json()["id"])
    assert {v["id"] for v in client.get("/api/v1/videos", headers=VIEWER).json()["videos"]} == {done["id"], kept["id"]}
    record = json.loads(store.read_bytes(f"uploads/{done['id']}/upload.json"))
    store.write_bytes(f"uploads/{done['id']}/upload.json", json.dumps({**record, "created_unix": 1.0}).encode())
    deleted = apply_retention(LocalStore(tmp_path / "lake"), store, 1.0)
    assert {d.key for d in deleted} >= {f"uploads/{done['id']}/upload.json", f"uploads/{done['id']}/thumbnail.jpg"}
    assert [v["id"] for v in client.get("/api/v1/videos", headers=VIEWER).json()["videos"]] == [kept["id"]]
    assert client.get(f"/api/v1/videos/{done['id']}", headers=VIEWER).status_code == 404
    assert client.get(f"/api/v1/videos/{done['id']}/frames", headers=VIEWER).status_code == 404
    assert client.app.state.uploads.used_bytes() == kept["size_bytes"]
    store.delete(f"uploads/{kept['id']}/upload.json")  # a record gone is found by a GET of it, too
    assert client.get(f"/api/v1/videos/{kept['id']}", headers=VIEWER).status_code == 404
    assert client.get("/api/v1/videos", headers=VIEWER).json()["videos"] == []


def test_delete_while_the_job_runs_leaves_nothing(client, clip, store):
    upload_id = upload(client, clip.read_bytes()).json()["id"]
    assert client.delete(f"/api/v1/videos/{upload_id}", headers=ADMIN).status_code == 204
    client.app.state.uploads.close()  # waits for the job, which finishes into nothing
    assert store.list_keys("uploads/") == []


def test_quota_refuses_an_upload_that_would_pass_it_until_one_is_deleted(store, clip):
    size = clip.stat().st_size
    app = routers_app(store, UploadConfig(quota_bytes=size * 3 // 2))
    with TestClient(app) as client:
        first = upload(client, clip.read_bytes())
        assert first.status_code == 202, first.text
        second = upload(client, clip.read_bytes())  # Content-Length says it at once
        assert second.status_code == 413
        assert f"{size} of {size * 3 // 2} bytes" in second.json()["detail"]
        assert "SPOTON_UPLOAD_QUOTA_BYTES" in second.json()["detail"]

        def chunks():  # no Content-Length: refused when accepted, before it reaches the store
            yield clip.read_bytes()

        assert client.post("/api/v1/videos", content=chunks(), headers=ADMIN).status_code == 413
        assert len(store.list_keys("uploads/")) >= 1 and all(
            k.startswith(f"uploads/{first.json()['id']}/") for k in store.list_keys("uploads/"))
        assert client.delete(f"/api/v1/videos/{first.json()['id']}", headers=OPERATOR).status_code == 204
        assert upload(client, clip.read_bytes()).status_code == 202
    app.state.uploads.close()


def test_upload_config_from_env():
    config = UploadConfig.from_env({"SPOTON_UPLOAD_IDLE_TIMEOUT_S": "2.5", "SPOTON_UPLOAD_QUOTA_BYTES": "1000"})
    assert config.idle_timeout_s == 2.5 and config.quota_bytes == 1000
    with pytest.raises(ValueError, match="SPOTON_UPLOAD_QUOTA_BYTES"):
        UploadConfig.from_env({"SPOTON_UPLOAD_QUOTA_BYTES": "0"})


def test_oversize_is_413_by_declared_length_and_while_streaming(client, store):
    big = b"\0" * (CONFIG.max_bytes + 1)
    assert upload(client, big).status_code == 413

    def chunks():  # no Content-Length: the limit is enforced as the bytes arrive
        for _ in range(CONFIG.max_bytes // 65536 + 2):
            yield b"\0" * 65536

    response = client.post("/api/v1/videos", content=chunks(), headers=ADMIN)
    assert response.status_code == 413 and "SPOTON_UPLOAD_MAX_BYTES" in response.json()["detail"]
    assert store.list_keys("uploads/") == []


def test_too_long_video_is_422(store, clip):
    app = routers_app(store, UploadConfig(max_duration_s=2.0))
    with TestClient(app) as client:
        response = upload(client, clip.read_bytes())
    app.state.uploads.close()
    assert response.status_code == 422 and "3.5 s long" in response.json()["detail"]


def test_bad_requests(client):
    assert upload(client, b"").status_code == 400
    form = client.post("/api/v1/videos", files={"file": ("v.mp4", b"x")}, headers=ADMIN)
    assert form.status_code == 415 and "raw request body" in form.json()["detail"]
    assert client.get("/api/v1/videos/0123456789abcdef0123456789abcdef", headers=VIEWER).status_code == 404
    assert client.get("/api/v1/videos/..%2F..%2Fetc", headers=VIEWER).status_code == 404
    with pytest.raises(UploadError, match="no upload"):
        resolve_upload("nope", client.app.state.store)


def test_roles(client, clip):
    assert upload(client, clip.read_bytes(), headers={}).status_code == 401
    assert upload(client, clip.read_bytes(), headers=VIEWER).status_code == 403
    assert client.get("/api/v1/videos").status_code == 401


def test_interrupted_job_resumes_after_restart(clip, store):
    """A server that died mid-job left the video and a record saying 'processing'."""
    upload_id = "0123456789abcdef0123456789abcdef"
    store.upload_file(clip, f"uploads/{upload_id}/video.mp4")
    record = UploadRecord(id=upload_id, state="processing", filename="clip.mp4",
                          size_bytes=clip.stat().st_size, video_key=f"uploads/{upload_id}/video.mp4",
                          created_unix=time.time(), frame_interval_s=1.0)
    store.write_bytes(record.record_key, json.dumps(record.to_json()).encode())
    restarted = UploadService(store, CONFIG)
    deadline = time.monotonic() + 60
    while restarted.get(upload_id).state not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    restarted.close()
    assert restarted.get(upload_id).state == "done"
    assert [f.index for f in restarted.get(upload_id).frames] == [0, 10, 20, 30]
    assert json.loads(store.read_bytes(record.record_key))["state"] == "done"


def test_a_failed_upload_left_with_its_video_loses_it_on_restart(clip, store):
    upload_id = "fedcba9876543210fedcba9876543210"
    store.upload_file(clip, f"uploads/{upload_id}/video.mp4")
    record = UploadRecord(id=upload_id, state="failed", filename="clip.mp4", size_bytes=clip.stat().st_size,
                          video_key=f"uploads/{upload_id}/video.mp4", created_unix=time.time(),
                          frame_interval_s=1.0, error="truncated")
    store.write_bytes(record.record_key, json.dumps(record.to_json()).encode())
    service = UploadService(store, CONFIG)
    service.close()
    assert store.list_keys("uploads/") == [record.record_key]
    assert service.get(upload_id).state == "failed" and service.used_bytes() == 0


@pytest.mark.integration
def test_a_session_plays_an_upload(live_server, clip):
    """Through the real API: upload, wait for the job, then a session camera on the upload id."""
    with live_server.client("admin") as client:
        response = client.post("/api/v1/videos", content=clip.read_bytes(), params={"filename": "c.mp4"},
                               headers={"Content-Type": "video/mp4"})
        assert response.status_code == 202, response.text
        upload_id = response.json()["id"]
        done = wait_state(client, upload_id, headers={})  # the client's own admin token
        assert done["state"] == "done"
        bad = client.post("/api/v1/sessions", json={"environment": "pets_s2l1",
                                                    "cameras": {"cam1": {"kind": "upload", "uri": "nope"}}})
        assert bad.status_code == 404 and "no upload 'nope'" in bad.json()["detail"]
    created = live_server.create_session(cameras={"cam1": {"kind": "upload", "uri": upload_id}})
    try:
        with live_server.client("viewer") as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = client.get(f"/api/v1/sessions/{created['session_id']}").json()
                if status["state"] == "running" and status["cameras"]["cam1"]["frames_read"] > 5:
                    break
                time.sleep(0.2)
            assert status["state"] == "running", status
            assert status["cameras"]["cam1"]["source"]["uri"] == done["video_key"]
    finally:
        live_server.delete_session(created["session_id"])


@pytest.fixture
def uvicorn_server(store, tmp_path, monkeypatch):
    """The upload routes under a real uvicorn (in a thread), temp files in a folder of this test."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    app = routers_app(store, UploadConfig(idle_timeout_s=1.0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield server.config.port, temp
    server.should_exit = True
    thread.join(10)
    app.state.uploads.close()


def test_a_body_that_stalls_is_cut_off_and_its_temp_file_removed(uvicorn_server, store):
    port, temp = uvicorn_server
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-key\r\n"
                     b"Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n"
                     + b"\0" * 65536)  # then nothing more
        deadline = time.monotonic() + 20
        while not list(temp.glob("spoton-upload-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(temp.glob("spoton-upload-*")), "the body was not being received into a temp file"
        reply = b""
        while chunk := sock.recv(65536):  # the server answers and closes (a 30 s socket timeout fails)
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"bytes (SPOTON_UPLOAD_IDLE_TIMEOUT_S)" in reply
    assert list(temp.iterdir()) == [] and store.list_keys("uploads/") == []
