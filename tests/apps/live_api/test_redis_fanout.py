"""Scale-out: two API instances on loopback sharing real Redis; a session on one, a client on the other."""
from __future__ import annotations

import asyncio
import json
import uuid

import jsonschema
import pytest
import redis

from live_api_server import LiveApiServer, live_store, next_message, ws_connect  # noqa: F401
from spoton.live.tick import TICK_JSON_SCHEMA

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def redis_prefix():
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis is not running on {REDIS_URL} ({exc}): start redis-server")
    prefix = f"spoton-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture(scope="module")
def two_instances(live_store, redis_prefix):
    first = LiveApiServer(live_store, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    second = LiveApiServer(live_store, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    try:
        yield first.wait_ready(), second.wait_ready()
    finally:
        first.stop()
        second.stop()


def test_client_on_second_instance_gets_ticks_status_and_commands_through(two_instances):
    first, second = two_instances
    sid = first.create_session(tick_rate_hz=4)["session_id"]
    with second.client("viewer") as client:  # the registry: the second instance knows the session
        status = client.get(f"/api/v1/sessions/{sid}").json()
        assert status["session_id"] == sid and status["instance"] != "" and status["environment"] == "pets_s2l1"
        assert sid in [s["session_id"] for s in client.get("/api/v1/sessions").json()["sessions"]]

    async def run():
        async with ws_connect(second, sid, role="operator") as remote, ws_connect(first, sid) as local:
            tick = await next_message(remote, "tick")
            jsonschema.validate(tick, TICK_JSON_SCHEMA)
            assert tick["session_id"] == sid
            local_tick = await next_message(local, "tick")
            assert local_tick["session_id"] == sid
            # a command sent to the second instance reaches the session on the first
            await remote.send(json.dumps({"type": "set_mode", "mode": "manual"}))
            assert (await next_message(remote, "ack"))["command"] == "set_mode"
            await next_message(local, "tick", where=lambda m: m["mode"] == "manual")
            await next_message(remote, "tick", where=lambda m: m["mode"] == "manual")
            await remote.send(json.dumps({"type": "set_mode", "mode": "sideways"}))
            assert (await next_message(remote, "error"))["code"] == 400
            # deleting through the second instance stops it on the first; both clients hear it
            with second.client("admin") as client:
                assert client.delete(f"/api/v1/sessions/{sid}").json()["state"] == "stopping"
            for ws in (remote, local):
                await next_message(ws, "status", where=lambda m: m["state"] == "stopped")
    asyncio.run(run())
    with first.client("viewer") as a, second.client("viewer") as b:
        assert a.get(f"/api/v1/sessions/{sid}").status_code == 404
        assert b.get(f"/api/v1/sessions/{sid}").status_code == 404
