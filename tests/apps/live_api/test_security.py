"""The live API as a hostile client sees it: a real uvicorn server with allow-lists, an Origin list,
small WebSocket caps and a low command rate; camera passwords and tokens never leave the server."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from live_api_server import KEYS, LiveApiServer, live_store, next_message  # noqa: F401 (fixture)
from live_servers import free_port

pytestmark = pytest.mark.integration

GOOD_ORIGIN = "http://overlay.example"
PASSWORD = "S3cretPass"


@pytest.fixture(scope="module")
def server(live_store):
    server = LiveApiServer(live_store, extra_env={
        "SPOTON_SOURCE_HOSTS": "127.0.0.1/32", "SPOTON_CORS_ORIGINS": GOOD_ORIGIN,
        "SPOTON_WS_MAX_CLIENTS_PER_SESSION": "2", "SPOTON_WS_MAX_CLIENTS": "3",
        "SPOTON_COMMANDS_PER_S": "5"}).wait_ready()
    yield server
    server.stop()


def one_camera_session(server: LiveApiServer, camera: str) -> str:
    return server.create_session(tick_rate_hz=2.0, cameras={
        camera: {"kind": "store", "uri": f"pets_s2l1/{camera}/sub_video_01.mp4"}})["session_id"]


@pytest.fixture(scope="module")
def session(server) -> str:
    sid = one_camera_session(server, "cam1")
    yield sid
    server.delete_session(sid)


def full_log(server: LiveApiServer) -> str:
    server.log.flush()
    return Path(server.log.name).read_text()


def connect(server: LiveApiServer, sid: str, role: str = "operator", **kwargs):
    return websockets.connect(f"{server.ws_base}/ws/sessions/{sid}?token={KEYS[role]}", **kwargs)


async def upgrade_status(url: str, **kwargs) -> int:
    try:
        async with websockets.connect(url, **kwargs):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_camera_password_is_redacted_in_responses_logs_and_metrics(server):
    uri = f"rtsp://camuser:{PASSWORD}@127.0.0.1:{free_port()}/stream"  # nothing listens there
    created = server.create_session(cameras={"cam1": {"kind": "rtsp", "uri": uri}})
    sid = created["session_id"]
    seen = [json.dumps(created)]
    with server.client("viewer") as client:
        for _ in range(120):
            status = client.get(f"/api/v1/sessions/{sid}").json()
            seen.append(json.dumps(status))
            if status["state"] == "failed":
                break
            asyncio.run(asyncio.sleep(0.25))
        seen.append(client.get("/api/v1/sessions").text)
        seen.append(httpx.get(f"{server.base}/metrics").text)
    assert status["state"] == "failed", status
    assert status["cameras"]["cam1"]["source"]["uri"] == uri.replace(PASSWORD, "***")
    assert "camuser:***@127.0.0.1" in status["reason"] and "camuser:***@" in status["cameras"]["cam1"]["error"]
    with server.client("admin") as client:  # the spec's own error (a wrong scheme) redacts too
        refused = client.post("/api/v1/sessions", json={"environment": "pets_s2l1", "cameras": {
            "cam1": {"kind": "rtsp", "uri": uri.replace("rtsp://", "http://")}}})
        seen.append(refused.text)
        client.delete(f"/api/v1/sessions/{sid}")
        malformed = client.post("/api/v1/sessions", json={"environment": "pets_s2l1", "cameras": {"cam1": uri}})
        seen.append(malformed.text)
    assert refused.status_code == 422 and malformed.status_code == 422
    assert "camuser" not in malformed.text  # the error body names the field, never echoes its input
    log = full_log(server)
    assert "camuser:***@127.0.0.1" in log  # the failure was logged, redacted
    for text in seen + [log]:
        assert PASSWORD not in text


def test_token_query_values_stay_out_of_the_access_log(server):
    token = KEYS["viewer"]
    response = httpx.get(f"{server.base}/api/v1/media/pets_s2l1/cam1/sub_video_01.mp4?token={token}",
                         headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    log = full_log(server)
    assert "sub_video_01.mp4?token=*** HTTP/1.1" in log and token not in log


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/v1/media/pets_s2l1/environment.json%00.mp4", None),
    ("GET", "/api/v1/environments/pets_s2l1%00/cameras", None),
    ("POST", "/api/v1/sessions", {"environment": "pets_s2l1\u0000"}),
    ("POST", "/api/v1/sessions", {"environment": "pets_s2l1",
                                  "cameras": {"cam1": {"kind": "store", "uri": "pets_s2l1/cam1\u0000.mp4"}}}),
    ("POST", "/api/v1/sessions", {"environment": "pets_s2l1",
                                  "cameras": {"cam1": {"kind": "file", "uri": "/etc/passwd\u0000"}}}),
])
def test_null_bytes_are_client_errors(server, method, path, body):
    with server.client("admin") as client:
        response = client.request(method, path, json=body)
    assert response.status_code in (400, 404, 422), response.text
    detail = response.json()["detail"]
    assert any(word in detail for word in ("unknown environment", "no media", "control character", "invalid store key"))


@pytest.mark.parametrize("camera, words", [
    ({"kind": "file", "uri": "/etc/passwd"}, "outside the server's media roots"),
    ({"kind": "rtsp", "uri": "rtsp://10.9.8.7/stream"}, "allow-list"),
    ({"kind": "http", "uri": "http://cam.example/x.mjpg"}, "allow-list"),
    ({"kind": "store", "uri": "pets_s2l1/environment/current.json"}, "not a readable video"),
])
def test_sources_outside_the_allow_lists_and_errors_without_server_paths(server, live_store, camera, words):
    with server.client("admin") as client:
        response = client.post("/api/v1/sessions", json={"environment": "pets_s2l1", "cameras": {"cam1": camera}})
    assert response.status_code == 422 and words in response.json()["detail"], response.text
    assert str(live_store) not in response.text and "bytes)" not in response.text


def test_strict_tick_rate_and_no_store_path_in_readyz(server, live_store):
    with server.client("admin") as client:
        response = client.post("/api/v1/sessions", json={"environment": "pets_s2l1", "tick_rate_hz": True})
    assert response.status_code == 422 and "tick_rate_hz" in response.text
    ready = httpx.get(f"{server.base}/readyz")
    assert ready.status_code == 200 and str(live_store) not in ready.text


def test_bad_frames_get_an_error_and_the_socket_stays_open(server, session):
    async def run():
        async with connect(server, session) as ws:
            for frame, words in [(b"\x00\x01binary", "binary frames"),
                                 ("[" * 1000 + "]" * 1000, "nested too deeply"),
                                 ('{"type": "pause", "pad": "' + "x" * 5000 + '"}', "byte limit"),
                                 (json.dumps({"type": "set_target_id", "target_id": 10**6}), "no global id")]:
                await ws.send(frame)
                error = await next_message(ws, "error")
                assert words in error["detail"], (words, error)
                await asyncio.sleep(0.25)  # stay under the 5 commands per second
            await ws.send(json.dumps({"type": "resume"}))
            assert (await next_message(ws, "ack"))["command"] == "resume"
    asyncio.run(run())


def test_origin_is_checked_against_the_cors_list(server, session):
    url = f"{server.ws_base}/ws/sessions/{session}?token={KEYS['viewer']}"

    async def run():
        assert await upgrade_status(url, origin="http://evil.example") == 403
        assert await upgrade_status(url, origin=GOOD_ORIGIN) == 101
        assert await upgrade_status(url) == 101  # no Origin: not a browser
        assert await upgrade_status(url, origin=server.base) == 101  # the overlay page, same origin
    asyncio.run(run())


def test_connection_caps_per_session_and_in_total(server, session):
    other = one_camera_session(server, "cam2")
    url = f"{server.ws_base}/ws/sessions/{{}}?token={KEYS['viewer']}"

    async def run():
        async with connect(server, session, "viewer") as a1, connect(server, session, "viewer") as a2:
            response = await upgrade_status(url.format(session))
            assert response == 429  # per session: 2
            async with connect(server, other, "viewer") as b1:
                assert await upgrade_status(url.format(other)) == 429  # in total: 3
                await next_message(b1, "status")
            await next_message(a1, "status")
            await next_message(a2, "status")
        async with connect(server, session, "viewer") as again:  # freed on close
            await next_message(again, "status")
    try:
        asyncio.run(run())
    finally:
        server.delete_session(other)


def test_commands_are_rate_limited_per_token_across_connections(server, session):
    async def replies(ws, count: int) -> list[dict]:
        got = []
        while len(got) < count:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["type"] in ("ack", "error"):
                got.append(message)
        return got

    async def run():
        await asyncio.sleep(2.5)  # a full bucket: 10 commands (5 per second, burst 10)
        async with connect(server, session) as first, connect(server, session) as second:
            for _ in range(10):
                await first.send(json.dumps({"type": "clear_target"}))
            assert sum(r["type"] == "ack" for r in await replies(first, 10)) >= 9
            for _ in range(10):  # a fresh connection with the same token gets no fresh bucket
                await second.send(json.dumps({"type": "clear_target"}))
            limited = [r for r in await replies(second, 10) if r["type"] == "error"]
            assert len(limited) >= 5 and all(r["code"] == 429 and "per token" in r["detail"] for r in limited)
    asyncio.run(run())


def test_upload_errors_do_not_show_the_temporary_file(server):
    import tempfile

    with server.client("admin") as client:
        response = client.post("/api/v1/videos?filename=notes.mp4", content=b"plain text, not a video " * 40,
                               headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 415 and "the upload" in response.json()["detail"], response.text
    assert tempfile.gettempdir() not in response.text and "spoton-upload-" not in response.text
    assert "bytes)" not in response.text
