"""Redis faults against the real parts: a throwaway redis-server (never the machine's own on 6379)
that the tests kill and restart, shared by real API processes on loopback.

- Killed and restarted under a live session across two instances: local clients keep their
  ticks, REST answers 200/404/503 (never 500) while it is down, and the relay (ticks one way,
  commands the other) works again after; one warning and one recovery line per instance.
- SIGTERM to an instance with a running session and Redis: the process exits.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import websockets

from live_api_server import LiveApiServer, RedisServer, live_store, next_message, ws_connect  # noqa: F401

pytestmark = pytest.mark.integration
PATTERNS_PER_PREFIX = 2  # ticks:* and commands:*
UNREACHABLE_LINE = "is unreachable"
RECOVERED_LINE = "is back after"


@pytest.fixture
def redis_server():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    server = RedisServer().start()
    yield server
    server.kill()


def full_log(server: LiveApiServer) -> str:
    if not server.log.closed:
        server.log.flush()
    return Path(server.log.name).read_text()


def assert_rest_answers_without_redis(owner: LiveApiServer, other: LiveApiServer, sid: str) -> None:
    """What each REST route answers while Redis is down: local state, 404/503 with a reason, never 500."""
    unknown = "s-000000000000"
    with owner.client("admin") as a, other.client("admin") as b:
        listing = a.get("/api/v1/sessions")
        assert listing.status_code == 200 and sid in [s["session_id"] for s in listing.json()["sessions"]]
        assert listing.json()["partial"] is True and "Redis" in listing.json()["detail"]
        assert a.get(f"/api/v1/sessions/{sid}").json()["state"] == "running"  # local: still served
        assert b.get("/api/v1/sessions").status_code == 200
        for client in (a, b):
            for response in (client.get(f"/api/v1/sessions/{unknown}"), client.delete(f"/api/v1/sessions/{unknown}")):
                assert response.status_code == 503, response.text
                assert "Redis" in response.json()["detail"] and "retry" in response.json()["detail"]
        # the session lives on the owner: the other instance cannot know it without Redis
        assert b.get(f"/api/v1/sessions/{sid}").status_code == 503


async def ws_refused_status(server: LiveApiServer, session_id: str) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with ws_connect(server, session_id):
            pass
    return refused.value.response.status_code


async def relay_works(owner_ws, other_ws, mode: str) -> bool:
    """A command sent on the other instance reaches the owner's session, and its ticks come back."""
    await other_ws.send(json.dumps({"type": "set_mode", "mode": mode}))
    try:
        await next_message(owner_ws, "tick", timeout_s=1.0, where=lambda m: m["mode"] == mode)
        await next_message(other_ws, "tick", timeout_s=1.0, where=lambda m: m["mode"] == mode)
    except (AssertionError, asyncio.TimeoutError):
        return False
    return True


def test_relay_survives_a_redis_restart_across_two_instances(live_store, redis_server):
    prefix = f"spoton-test-{uuid.uuid4().hex[:8]}"
    owner = LiveApiServer(live_store, redis_url=redis_server.url, redis_prefix=prefix)
    other = LiveApiServer(live_store, redis_url=redis_server.url, redis_prefix=prefix)

    async def scenario(sid: str) -> float:
        async with ws_connect(owner, sid) as owner_ws, ws_connect(other, sid, role="operator") as other_ws:
            assert await relay_works(owner_ws, other_ws, "manual")
            assert redis_server.numpat() == PATTERNS_PER_PREFIX

            redis_server.kill()
            killed_ms = int(time.time() * 1000)
            for _ in range(3):  # repeated calls: one warning per outage, not one per call
                assert_rest_answers_without_redis(owner, other, sid)
                assert await ws_refused_status(other, "s-000000000000") == 404
            # the owner's own client keeps getting fresh ticks with Redis gone
            for _ in range(3):
                await next_message(owner_ws, "tick", where=lambda m: m["ts_unix_ms"] > killed_ms)

            redis_server.start()
            restarted = time.monotonic()
            deadline = restarted + 60
            while not await relay_works(owner_ws, other_ws, "auto"):
                assert time.monotonic() < deadline, "the relay did not come back within 60 s of the restart"
                await asyncio.sleep(0.2)
            recovery_s = time.monotonic() - restarted
            assert redis_server.numpat() == PATTERNS_PER_PREFIX
            return recovery_s

    try:
        owner.wait_ready()
        other.wait_ready()
        sid = owner.create_session(tick_rate_hz=4)["session_id"]
        recovery_s = asyncio.run(scenario(sid))
        with other.client("viewer") as client:  # the registry is back too (status is re-published each second)
            deadline = time.monotonic() + 10
            while (response := client.get(f"/api/v1/sessions/{sid}")).status_code != 200:
                assert time.monotonic() < deadline, response.text
                time.sleep(0.2)
            assert response.json()["instance"] != ""
    finally:
        owner.stop()
        other.stop()
    print(f"\nRedis restart -> relay works again (command and ticks across instances): {recovery_s:.2f} s")
    for server in (owner, other):
        log = full_log(server)
        assert "Traceback" not in log and " 500 " not in log, log[-3000:]
        assert log.count(UNREACHABLE_LINE) == 1 and log.count(RECOVERED_LINE) == 1, log[-3000:]


def test_sigterm_with_a_running_session_and_redis_exits(live_store, redis_server):
    server = LiveApiServer(live_store, redis_url=redis_server.url, redis_prefix=f"spoton-test-{uuid.uuid4().hex[:8]}")

    async def watch_then_terminate(sid: str) -> None:
        async with ws_connect(server, sid) as ws:
            await next_message(ws, "tick")  # running, its ticks going through the Redis publisher
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 30)

    try:
        server.wait_ready()
        sid = server.create_session(tick_rate_hz=10)["session_id"]
        asyncio.run(watch_then_terminate(sid))
        signalled = time.monotonic()
        try:  # a hang detector, not a speed check: the graceful stop is bounded well below this
            returncode = server.process.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the live API did not exit within 30 s of SIGTERM:\n{server.output()}")
        print(f"\nSIGTERM -> exit: {time.monotonic() - signalled:.2f} s after the socket closed")
        # uvicorn re-raises the signal once its graceful shutdown is complete
        assert returncode in (0, -signal.SIGTERM), server.output()
        log = full_log(server)
        assert f"session {sid}: stopped (the server is shutting down)" in log
        assert "Application shutdown complete" in log and "Traceback" not in log
    finally:
        server.stop()
