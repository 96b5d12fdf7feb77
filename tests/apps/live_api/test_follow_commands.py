"""Follow commands: validation (unit), then end to end on the live API: target, phase, virtual PTZ ticks."""
from __future__ import annotations

import asyncio
import json
import re

import jsonschema
import pytest

from live_api_server import live_server, live_store, next_message, ws_connect  # noqa: F401
from apps.live_api.sessions import CommandError, parse_command
from spoton.live.tick import TICK_JSON_SCHEMA


@pytest.mark.parametrize("data, expected", [
    ({"type": "ptz_move", "camera": "cam1", "pan": 0.5, "tilt": -1, "zoom": 0}, ("cam1", (0.5, -1.0, 0.0), None)),
    ({"type": "ptz_move", "camera": "cam1", "zoom": 1}, ("cam1", (0.0, 0.0, 1.0), None)),
    ({"type": "ptz_stop", "camera": "cam2"}, ("cam2", None, None)),
    ({"type": "ptz_goto_preset", "camera": "cam1", "preset": "door-1"}, ("cam1", None, "door-1")),
    ({"type": "ptz_save_preset", "camera": "cam1", "preset": "gate"}, ("cam1", None, "gate")),
])
def test_ptz_commands_parse(data, expected):
    command = parse_command(data)
    assert (command.type, command.camera, command.velocity, command.preset) == (data["type"], *expected)


@pytest.mark.parametrize("data, words", [
    ({"type": "ptz_move", "pan": 0.5}, 'needs "camera"'),
    ({"type": "ptz_move", "camera": "cam1", "pan": 1.5}, r"pan velocity must be a number in [-1, 1], got 1.5"),
    ({"type": "ptz_move", "camera": "cam1", "tilt": "up"}, "tilt velocity"),
    ({"type": "ptz_move", "camera": "cam1", "zoom": True}, "zoom velocity"),
    ({"type": "ptz_stop", "camera": 3}, 'needs "camera"'),
    ({"type": "ptz_goto_preset", "camera": "cam1"}, "preset name"),
    ({"type": "ptz_save_preset", "camera": "cam1", "preset": "a/b"}, "preset name"),
    ({"type": "ptz_fly", "camera": "cam1"}, "unknown command type 'ptz_fly'"),
])
def test_bad_ptz_commands_say_what_is_wrong(data, words):
    with pytest.raises(CommandError) as info:
        parse_command(data)
    assert words in str(info.value)


def test_tick_schema_takes_phase_and_ptz_and_refuses_bad_ones():
    tick = {"type": "tick", "schema": "spoton.live.tick/1", "session_id": "s", "seq": 0, "ts_unix_ms": 1, "ts_mono_ms": 1,
            "selected_target_id": 3, "mode": "auto", "tracking_phase": "TRACKING",
            "cameras": {"c1": {"frame_index": 0, "frame_ts": 0.0, "media_ts": 0, "frame_size": {"w": 10, "h": 10}, "space": "source",
                               "tracks": [],
                               "ptz": {"kind": "virtual", "pan": 0.1, "tilt": -0.2, "zoom": 0.5, "mode": "auto",
                                       "moving": True,
                                       "view": {"space": "processed", "viewport": {"x": 0.2, "y": 0.2, "w": 0.5, "h": 0.5},
                                                "tracks": [{"track_id": 1, "global_id": 3,
                                                            "bbox": {"x": 0.4, "y": 0.3, "w": 0.1, "h": 0.4}}]}}}}}
    jsonschema.validate(tick, TICK_JSON_SCHEMA)
    for path, bad in [(("tracking_phase",), "FOLLOWING"), (("cameras", "c1", "ptz", "pan"), 1.5),
                      (("cameras", "c1", "ptz", "zoom"), -0.1), (("cameras", "c1", "ptz", "view", "space"), "source")]:
        broken = json.loads(json.dumps(tick))
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, TICK_JSON_SCHEMA)


@pytest.mark.integration
def test_follow_a_target_and_drive_the_virtual_ptz(live_server):
    sid = live_server.create_session(tick_rate_hz=5)["session_id"]

    async def run():
        async with ws_connect(live_server, sid, role="operator") as ws:
            async def error_for(command: dict) -> dict:
                await ws.send(json.dumps(command))
                return await next_message(ws, "error")

            # auto mode picks a target, locks on it and zooms its viewport in on it
            tick = await next_message(ws, "tick", where=lambda m: m["tracking_phase"] == "TRACKING", timeout_s=60)
            jsonschema.validate(tick, TICK_JSON_SCHEMA)
            target = tick["selected_target_id"]
            def zoomed_on_target(camera: dict, target: int | None) -> bool:
                ptz = camera.get("ptz", {})
                return ptz.get("zoom", 0) > 0.2 and any(t["global_id"] == target for t in ptz["view"]["tracks"])
            zoomed = await next_message(ws, "tick", timeout_s=60, where=lambda m: any(
                zoomed_on_target(c, m["selected_target_id"]) for c in m["cameras"].values()))
            camera, entry = next((n, c) for n, c in zoomed["cameras"].items()
                                 if zoomed_on_target(c, zoomed["selected_target_id"]))
            assert entry["ptz"]["kind"] == "virtual" and entry["ptz"]["view"]["space"] == "processed"
            assert zoomed["tracking_phase"] in ("TRACKING", "REACQUIRED", "LOST")
            assert any(t["global_id"] == zoomed["selected_target_id"] for t in entry["ptz"]["view"]["tracks"])

            error = await error_for({"type": "ptz_move", "camera": camera, "pan": 0.5})
            assert error["code"] == 409 and "auto mode" in error["detail"]
            error = await error_for({"type": "ptz_stop", "camera": "nope"})
            assert error["code"] == 404 and "no camera 'nope'" in error["detail"]

            await ws.send(json.dumps({"type": "set_mode", "mode": "manual"}))
            await next_message(ws, "ack")
            await ws.send(json.dumps({"type": "ptz_save_preset", "camera": camera, "preset": "start"}))
            await next_message(ws, "ack")
            await ws.send(json.dumps({"type": "ptz_move", "camera": camera, "pan": -1, "tilt": 0, "zoom": 1}))
            await next_message(ws, "ack")
            moving = await next_message(ws, "tick", where=lambda m: m["cameras"][camera]["ptz"]["moving"])
            assert moving["cameras"][camera]["ptz"]["mode"] == "manual"
            await ws.send(json.dumps({"type": "ptz_stop", "camera": camera}))
            await next_message(ws, "ack")
            still = await next_message(ws, "tick", where=lambda m: not m["cameras"][camera]["ptz"]["moving"])
            await ws.send(json.dumps({"type": "ptz_goto_preset", "camera": camera, "preset": "start"}))
            await next_message(ws, "ack")
            error = await error_for({"type": "ptz_goto_preset", "camera": camera, "preset": "unknown"})
            assert error["code"] == 404 and "no preset 'unknown'" in error["detail"]
            assert still["cameras"][camera]["ptz"]["zoom"] > entry["ptz"]["zoom"]

            await ws.send(json.dumps({"type": "clear_target"}))
            await next_message(ws, "ack")
            idle = await next_message(ws, "tick", where=lambda m: m["selected_target_id"] is None)
            assert idle["tracking_phase"] == "IDLE"
            await ws.send(json.dumps({"type": "set_target_id", "target_id": target}))
            await next_message(ws, "ack")
            await next_message(ws, "tick", where=lambda m: m["tracking_phase"] in ("ACQUIRING", "TRACKING", "LOST"))
        with live_server.client("viewer") as client:
            status = client.get(f"/api/v1/sessions/{sid}").json()
            metrics = client.get("/metrics").text
        assert status["tracking_phase"] in ("ACQUIRING", "TRACKING", "LOST")
        assert status["follow"]["time_to_lock_s"] is None or status["follow"]["time_to_lock_s"] >= 0
        assert 'spoton_live_ptz_commands_total{driver="manual"} 4.0' in metrics
        locks = re.search(r"^spoton_live_time_to_lock_seconds_count (\S+)$", metrics, re.M)
        assert locks and float(locks.group(1)) >= 1
    try:
        asyncio.run(run())
    finally:
        live_server.delete_session(sid)


def test_me_tells_the_callers_role_and_the_ptz_view_of_whep_is_checked(live_server):
    for role in ("viewer", "operator", "admin"):
        with live_server.client(role) as client:
            assert client.get("/api/v1/me").json()["role"] == role
    with live_server.client(None) as client:
        assert client.get("/api/v1/me").status_code == 401
    sid = live_server.create_session(tick_rate_hz=5, cameras={"cam1": {"kind": "store", "uri":
                                                                      "pets_s2l1/cam1/sub_video_01.mp4"}})["session_id"]
    try:
        with live_server.client("viewer") as client:
            path = f"/api/v1/sessions/{sid}/cameras/cam1/whep"
            bad = client.post(f"{path}?view=zoom", content="v=0\r\n", headers={"Content-Type": "application/sdp"})
            assert bad.status_code == 422 and "view 'zoom'" in bad.json()["detail"] and "?view=ptz" in bad.json()["detail"]
            garbage = client.post(f"{path}?view=ptz", content="hello", headers={"Content-Type": "application/sdp"})
            assert garbage.status_code == 400 and "malformed SDP" in garbage.json()["detail"]  # same rules as wide
            other = client.post(f"/api/v1/sessions/{sid}/cameras/cam9/whep?view=ptz", content="v=0\r\n",
                                headers={"Content-Type": "application/sdp"})
            assert other.status_code == 404
        with live_server.client(None) as client:
            assert client.post(f"{path}?view=ptz", content="v=0\r\n",
                               headers={"Content-Type": "application/sdp"}).status_code == 401
    finally:
        live_server.delete_session(sid)
