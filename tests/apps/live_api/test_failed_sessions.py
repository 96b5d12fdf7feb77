"""A failed session (its camera never answers) gives its slot back: it stays listed as ``failed``
with its reason until deleted, but neither the session cap nor ``spoton_live_sessions_active``
counts it; deleting it reports its final state."""
from __future__ import annotations

import time

import pytest

from live_api_server import LiveApiServer, free_port, live_store  # noqa: F401
from spoton.sample import ENV_NAME

pytestmark = pytest.mark.integration
MAX_SESSIONS = 3


def wait_state(client, session_id: str, state: str, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while (status := client.get(f"/api/v1/sessions/{session_id}").json())["state"] != state:
        assert time.monotonic() < deadline, f"session {session_id} not {state} within {timeout_s} s: {status}"
        time.sleep(0.2)
    return status


def sessions_active(client) -> float:
    lines = client.get("/metrics").text.splitlines()
    return float(next(line.split()[1] for line in lines if line.startswith("spoton_live_sessions_active ")))


def test_failed_sessions_do_not_hold_slots_and_delete_reports_failed(live_store):
    server = LiveApiServer(live_store, extra_env={"SPOTON_MAX_SESSIONS": str(MAX_SESSIONS)}).wait_ready()
    try:
        with server.client("admin") as client:
            camera = client.get(f"/api/v1/environments/{ENV_NAME}/cameras").json()["cameras"][0]
            good = {camera["name"]: camera["default_source"]}
            dead_url = f"rtsp://127.0.0.1:{free_port()}/nothing"  # nothing listens there
            dead = {camera["name"]: {"kind": "rtsp", "uri": dead_url}}

            failed = []
            for _ in range(MAX_SESSIONS):  # each fails before the next: the cap counts active ones only
                failed.append(server.create_session(cameras=dead, tick_rate_hz=2)["session_id"])
                status = wait_state(client, failed[-1], "failed")
                assert dead_url in status["reason"]
            running = [server.create_session(cameras=good, tick_rate_hz=2)["session_id"]
                       for _ in range(MAX_SESSIONS)]
            for sid in running:
                wait_state(client, sid, "running")
            assert sessions_active(client) == MAX_SESSIONS
            refused = client.post("/api/v1/sessions", json={"environment": ENV_NAME, "cameras": good})
            assert refused.status_code == 429 and str(MAX_SESSIONS) in refused.json()["detail"]

            listed = {s["session_id"]: s for s in client.get("/api/v1/sessions").json()["sessions"]}
            assert set(listed) == set(failed + running)
            assert all(listed[sid]["state"] == "failed" and listed[sid]["reason"] for sid in failed)

            assert client.delete(f"/api/v1/sessions/{failed[0]}").json() == {"session_id": failed[0],
                                                                             "state": "failed"}
            assert client.delete(f"/api/v1/sessions/{running[0]}").json() == {"session_id": running[0],
                                                                              "state": "stopped"}
            assert client.get(f"/api/v1/sessions/{failed[0]}").status_code == 404
            assert sessions_active(client) == MAX_SESSIONS - 1

            # a create keeps the newest MAX_SESSIONS failed sessions listed and unlists older ones
            for _ in range(2):
                failed.append(server.create_session(cameras=dead, tick_rate_hz=2)["session_id"])
                wait_state(client, failed[-1], "failed")
            assert len(failed[1:]) == MAX_SESSIONS + 1
            running.append(server.create_session(cameras=good, tick_rate_hz=2)["session_id"])
            listed = {s["session_id"] for s in client.get("/api/v1/sessions").json()["sessions"]}
            assert listed == set(failed[2:] + running[1:])
    finally:
        server.stop()
