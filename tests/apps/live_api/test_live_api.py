"""The live API end to end: a real uvicorn server, the real detector on the sample environment's videos."""
from __future__ import annotations

import asyncio
import json

import httpx
import jsonschema
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from live_api_server import JWT_SECRET, KEYS, live_server, live_store, next_message, ws_connect  # noqa: F401
from apps.live_api.auth import Role, issue_jwt

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tick_schema(live_server) -> dict:
    response = httpx.get(f"{live_server.base}/api/v1/schemas/tick.json")
    assert response.status_code == 200
    jsonschema.Draft202012Validator.check_schema(response.json())
    return response.json()


@pytest.fixture(scope="module")
def session(live_server) -> dict:
    created = live_server.create_session(tick_rate_hz=4)
    yield created
    live_server.delete_session(created["session_id"])


def test_health_ready_and_metrics(live_server, session):
    assert httpx.get(f"{live_server.base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live_server.base}/readyz").json()
    assert ready["status"] == "ready" and "nanodet" in ready["checks"]["detector"]

    async def two_ticks():
        async with ws_connect(live_server, session["session_id"]) as ws:  # offers permessage-deflate
            await next_message(ws, "tick")
            await next_message(ws, "tick")
            return ws.response.headers.get("Sec-WebSocket-Extensions")
    # no compression by default: the one serialised tick is framed alike for every client
    assert asyncio.run(two_ticks()) is None
    text = httpx.get(f"{live_server.base}/metrics").text
    sent = [line for line in text.splitlines() if line.startswith("spoton_live_tick_send_delay_seconds_count")]
    assert sent and float(sent[0].split()[-1]) >= 2, sent  # the fan-out times each tick it hands a socket
    assert "spoton_live_sessions_active 1.0" in text
    assert f'spoton_live_ticks_published_total{{session="{session["session_id"]}"}}' in text
    assert "spoton_live_frame_to_tick_latency_seconds_bucket" in text
    assert "spoton_live_websocket_clients" in text and "spoton_live_processing_fps" in text


def test_rest_auth_401_and_403(live_server):
    base = live_server.base
    assert httpx.get(f"{base}/api/v1/environments").status_code == 401
    assert httpx.get(f"{base}/api/v1/environments", headers={"Authorization": "Bearer nope"}).status_code == 401
    expired = issue_jwt(JWT_SECRET, "alice", Role.admin, ttl_s=-10)
    response = httpx.get(f"{base}/api/v1/environments", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    viewer = {"Authorization": f"Bearer {KEYS['viewer']}"}
    assert httpx.get(f"{base}/api/v1/environments", headers=viewer).status_code == 200
    forbidden = httpx.post(f"{base}/api/v1/sessions", headers=viewer, json={"environment": "pets_s2l1"})
    assert forbidden.status_code == 403 and "admin" in forbidden.json()["detail"]
    operator_jwt = issue_jwt(JWT_SECRET, "bob", Role.operator)
    response = httpx.delete(f"{base}/api/v1/sessions/s-x", headers={"Authorization": f"Bearer {operator_jwt}"})
    assert response.status_code == 403


def test_websocket_auth_at_connect(live_server, session):
    sid = session["session_id"]

    async def status_of(url, **kwargs) -> int:
        try:
            async with websockets.connect(url, **kwargs):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async def run():
        base = f"{live_server.ws_base}/ws/sessions/{sid}"
        assert await status_of(base) == 401
        assert await status_of(f"{base}?token=wrong") == 401
        assert await status_of(f"{live_server.ws_base}/ws/sessions/s-nothere?token={KEYS['viewer']}") == 404
        # browsers cannot set headers: the token also travels as a sub-protocol
        jwt_token = issue_jwt(JWT_SECRET, "carol", Role.viewer)
        async with websockets.connect(base, subprotocols=[f"bearer.{jwt_token}"]) as ws:
            assert ws.subprotocol == f"bearer.{jwt_token}"
            assert (await next_message(ws, "status"))["session_id"] == sid
    asyncio.run(run())


def test_environments_and_cameras(live_server):
    with live_server.client("viewer") as client:
        environments = client.get("/api/v1/environments").json()["environments"]
        assert [e["name"] for e in environments] == ["pets_s2l1"]
        assert environments[0]["cameras"] == ["cam1", "cam2", "cam3"]
        cameras = client.get("/api/v1/environments/pets_s2l1/cameras").json()["cameras"]
        assert all(c["calibrated"] and len(c["sub_videos"]) == 4 for c in cameras)
        assert cameras[0]["default_source"] == {"kind": "store", "uri": "pets_s2l1/cam1/sub_video_01.mp4"}
        assert client.get("/api/v1/environments/nowhere/cameras").status_code == 404
        assert client.get("/api/v1/environments/..%2F..%2Fetc/cameras").status_code == 404


@pytest.mark.parametrize("body, status, words", [
    ({"environment": "nowhere"}, 404, "unknown environment"),
    ({"environment": "pets_s2l1", "cameras": {"cam9": {"kind": "store", "uri": "x.mp4"}}}, 422, "unknown cameras"),
    ({"environment": "pets_s2l1", "cameras": {"cam1": {"kind": "store", "uri": "pets_s2l1/none.mp4"}}}, 422, "cam1"),
    ({"environment": "pets_s2l1", "cameras": {"cam1": {"kind": "store", "uri": "pets_s2l1/environment/current.json"}}},
     422, "not a readable video"),
    ({"environment": "pets_s2l1", "cameras": {"cam1": {"kind": "rtsp", "uri": "http://x"}}}, 422, "rtsp://"),
    ({"environment": "pets_s2l1", "tick_rate_hz": 500}, 422, "tick_rate_hz"),
])
def test_bad_session_requests(live_server, body, status, words):
    with live_server.client("admin") as client:
        response = client.post("/api/v1/sessions", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_ticks_validate_and_respect_the_rate(live_server, session, tick_schema):
    sid = session["session_id"]

    async def run():
        async with ws_connect(live_server, sid) as ws:
            ticks = [await next_message(ws, "tick") for _ in range(6)]
        return ticks
    ticks = asyncio.run(run())
    for tick in ticks:
        jsonschema.validate(tick, tick_schema)
        assert tick["session_id"] == sid
    assert [t["seq"] for t in ticks] == list(range(ticks[0]["seq"], ticks[0]["seq"] + 6))
    gaps = [b["ts_mono_ms"] - a["ts_mono_ms"] for a, b in zip(ticks, ticks[1:])]
    assert min(gaps) >= 1000 / 4 - 1, gaps  # at most the requested 4 ticks per second
    people = [t for tick in ticks for cam in tick["cameras"].values() for t in cam["tracks"]]
    assert len(people) >= 6, "the detector should find the PETS pedestrians"
    assert all(p["map"] is not None and p["global_id"] >= 1 for p in people)
    assert {"cam1", "cam2", "cam3"} <= set(ticks[-1]["cameras"])

    with live_server.client("viewer") as client:
        status = client.get(f"/api/v1/sessions/{sid}").json()
    assert status["state"] == "running" and status["fps"] > 0
    assert status["latency_ms"]["p50"] > 0 and status["latency_ms"]["p95"] >= status["latency_ms"]["p50"]
    assert set(status["cameras"]) == {"cam1", "cam2", "cam3"}
    assert all(c["last_frame_unix_ms"] and c["frames_read"] > 0 for c in status["cameras"].values())
    assert isinstance(status["dropped_frames"], int)


def test_commands_bad_commands_and_roles(live_server, session):
    sid = session["session_id"]

    async def run():
        async with ws_connect(live_server, sid, role="viewer") as viewer:
            await viewer.send(json.dumps({"type": "pause"}))
            error = await next_message(viewer, "error")
            assert error["code"] == 403 and "operator" in error["detail"]
        async with ws_connect(live_server, sid, role="operator") as ws:
            for bad, words in [("not json", "not JSON"), ('{"type": "fly"}', "unknown command"),
                               ('{"type": "set_target_id"}', "target_id"), ('{"type": "set_mode", "mode": "x"}', "auto"),
                               ("[1, 2]", "JSON object")]:
                await ws.send(bad)
                error = await next_message(ws, "error")
                assert error["code"] == 400 and words in error["detail"], (bad, error)
            tick = await next_message(ws, "tick")  # still open, still ticking
            target = max(t["global_id"] for c in tick["cameras"].values() for t in c["tracks"])
            await ws.send(json.dumps({"type": "set_mode", "mode": "manual"}))
            await next_message(ws, "ack")
            await ws.send(json.dumps({"type": "set_target_id", "target_id": target + 10**6}))
            error = await next_message(ws, "error")  # an id the session never handed out
            assert error["code"] == 404 and "no global id" in error["detail"]
            await ws.send(json.dumps({"type": "set_target_id", "target_id": target}))
            assert (await next_message(ws, "ack"))["command"] == "set_target_id"
            tick = await next_message(ws, "tick", where=lambda m: m["selected_target_id"] == target)
            assert tick["mode"] == "manual"
            await ws.send(json.dumps({"type": "clear_target"}))
            await next_message(ws, "ack")
            await next_message(ws, "tick", where=lambda m: m["selected_target_id"] is None)
            await ws.send(json.dumps({"type": "set_mode", "mode": "auto"}))
            await next_message(ws, "ack")
            tick = await next_message(ws, "tick", where=lambda m: m["mode"] == "auto")
            visible = {t["global_id"] for c in tick["cameras"].values() for t in c["tracks"]}
            # auto mode follows someone when people are in view; it keeps a target through a short
            # occlusion (spoton.follow.phase), so the target need not be in this very tick
            assert not visible or tick["selected_target_id"] is not None

            await ws.send(json.dumps({"type": "pause"}))
            await next_message(ws, "ack")
            paused = await next_message(ws, "status", where=lambda m: m["paused"])
            seq_at_pause = paused["ticks_published"]
            await asyncio.sleep(1.5)
            with live_server.client("viewer") as client:
                status = client.get(f"/api/v1/sessions/{sid}").json()
            assert status["paused"] and status["ticks_published"] <= seq_at_pause + 1
            await ws.send(json.dumps({"type": "resume"}))
            await next_message(ws, "ack")
            tick = await next_message(ws, "tick")
            assert tick["seq"] >= seq_at_pause

            replies = []
            for _ in range(40):  # commands are rate-limited per token
                await ws.send(json.dumps({"type": "clear_target"}))
            while len(replies) < 40:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] in ("ack", "error"):
                    replies.append(message)
            limited = [r for r in replies if r["type"] == "error"]
            assert limited and all(r["code"] == 429 for r in limited)
            assert sum(r["type"] == "ack" for r in replies) >= 10
    asyncio.run(run())


def test_two_sessions_share_nothing_and_delete_frees(live_server, session, tick_schema):
    other = live_server.create_session(tick_rate_hz=4,
                                       cameras={"cam3": {"kind": "store", "uri": "pets_s2l1/cam3/sub_video_02.mp4"}})
    sid = other["session_id"]
    assert sid != session["session_id"] and other["ws_url"].endswith(f"/ws/sessions/{sid}")

    async def run():
        async with ws_connect(live_server, sid) as ws:
            first = await next_message(ws, "tick")
            jsonschema.validate(first, tick_schema)
            assert set(first["cameras"]) == {"cam3"}
            # its own identity gallery: ids start at 1 whatever the first session has handed out
            ids = {t["global_id"] for t in first["cameras"]["cam3"]["tracks"]}
            assert not ids or min(ids) == 1
            with live_server.client("admin") as client:
                assert client.delete(f"/api/v1/sessions/{sid}").json()["state"] == "stopped"
            final = await next_message(ws, "status", where=lambda m: m["state"] == "stopped")
            assert final["session_id"] == sid
            with pytest.raises(websockets.ConnectionClosedOK):  # the server closes the socket
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
        async with ws_connect(live_server, session["session_id"]) as ws:  # the first one runs on
            await next_message(ws, "tick")
    asyncio.run(run())
    with live_server.client("viewer") as client:
        assert client.get(f"/api/v1/sessions/{sid}").status_code == 404
        listed = [s["session_id"] for s in client.get("/api/v1/sessions").json()["sessions"]]
    assert listed == [session["session_id"]]


def test_slow_client_does_not_slow_a_fast_one(live_server, session):
    """A client that never reads, beside one that does: the reader sees every tick in order."""
    sid = session["session_id"]

    async def run():
        async with ws_connect(live_server, sid, max_queue=1) as slow:  # reads nothing below
            async with ws_connect(live_server, sid) as fast:
                ticks = [await next_message(fast, "tick") for _ in range(8)]
            assert [t["seq"] for t in ticks] == list(range(ticks[0]["seq"], ticks[0]["seq"] + 8))
            assert slow.state.name == "OPEN"
    asyncio.run(run())
