"""Several live API instances on one S3 and one Redis (issue 20, item 6), all real: a SeaweedFS and a
redis-server of the test's own, two API processes with ``SPOTON_STORE=s3://...`` and their own
(empty) ``SPOTON_VAR``.

A session created on one instance ticks to a WebSocket on the other; the other serves Range and whole
GETs of a sub-video straight from S3 and runs sessions from S3 itself; neither instance ever writes a
video to its local disk, and no log line carries the S3 secret or a presigned URL's signature.
"""
from __future__ import annotations

import asyncio
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from live_api_server import LiveApiServer, RedisServer, live_store, next_message, ws_connect  # noqa: F401
from spoton.live.tick import TICK_JSON_SCHEMA
from spoton.sample import ENV_NAME
from spoton.storage.store import S3Store
from support.seaweed import start_seaweed

pytestmark = pytest.mark.integration
ACCESS, SECRET = "spoton-live-test", "spoton-live-test-secret-0123"
BUCKET, PREFIX = "spoton-live", "store"


@pytest.fixture(scope="module")
def s3_store(tmp_path_factory, live_store):  # noqa: F811
    """A SeaweedFS holding the sample environment's short build under s3://spoton-live/store."""
    server, client = start_seaweed(tmp_path_factory.mktemp("seaweed"), ACCESS, SECRET)
    store = S3Store(client, BUCKET, PREFIX, cache_dir=tmp_path_factory.mktemp("unused-cache"))
    store.ensure_bucket()
    for path in sorted(live_store.rglob("*")):
        if path.is_file():
            store.upload_file(path, path.relative_to(live_store).as_posix())
    yield server, store
    server.stop()


@pytest.fixture(scope="module")
def two_instances(s3_store, tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    server, _ = s3_store
    redis_server = RedisServer().start()
    instances = []
    try:
        for name in ("a", "b"):
            var = tmp_path_factory.mktemp(f"var-{name}")
            env = {"SPOTON_STORE": f"s3://{BUCKET}/{PREFIX}", "SPOTON_VAR": str(var),
                   "SPOTON_S3_ENDPOINT": server.endpoint, "AWS_ACCESS_KEY_ID": ACCESS,
                   "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1"}
            instances.append(LiveApiServer(var / "store", redis_url=redis_server.url, extra_env=env))
        yield tuple(instance.wait_ready() for instance in instances)
    finally:
        for instance in instances:
            instance.stop()
        redis_server.kill()


def full_log(server: LiveApiServer) -> str:
    return Path(server.log.name).read_text()


def test_two_instances_share_one_s3_and_one_redis(two_instances, s3_store):
    first, second = two_instances
    seaweed, store = s3_store
    key = f"{ENV_NAME}/cam1/sub_video_01.mp4"
    data = store.read_bytes(key)
    etag = store.info(key).etag
    with second.client("viewer") as client:  # both instances list the environment from S3
        environments = client.get("/api/v1/environments").json()["environments"]
        assert [e["name"] for e in environments] == [ENV_NAME] and environments[0]["segments"] > 0
        cameras = client.get(f"/api/v1/environments/{ENV_NAME}/cameras").json()["cameras"]
        assert cameras[0]["default_source"] == {"kind": "store", "uri": key}

    source = {"cam1": {"kind": "store", "uri": key}}  # one camera each: the test is about where bytes come from
    with ThreadPoolExecutor(2) as pool:  # both at once: each instance's first session loads the tracker
        created = [pool.submit(instance.create_session, tick_rate_hz=4, cameras=source)
                   for instance in (first, second)]
        sid, own = (future.result()["session_id"] for future in created)

    async def ticks():
        async with ws_connect(second, sid) as remote, ws_connect(first, own) as remote_own:
            tick = await next_message(remote, "tick")  # a session of A, through Redis, on B
            jsonschema.validate(tick, TICK_JSON_SCHEMA)
            assert tick["session_id"] == sid
            assert (await next_message(remote_own, "tick"))["session_id"] == own  # and B's, on A
    asyncio.run(ticks())

    with second.client("viewer") as client:
        status = client.get(f"/api/v1/sessions/{own}").json()  # B decodes from S3 itself
        assert status["instance"] != client.get(f"/api/v1/sessions/{sid}").json()["instance"]
        assert status["state"] == "running"
        assert status["cameras"]["cam1"]["frames_read"] > 0 and status["cameras"]["cam1"]["source"]["uri"] == key

        url = f"/api/v1/media/{key}"
        part = client.get(url, headers={"Range": "bytes=1000-4999"})
        assert part.status_code == 206 and part.content == data[1000:5000]
        assert part.headers["content-range"] == f"bytes 1000-4999/{len(data)}"
        assert part.headers["etag"] == etag and part.headers["last-modified"].endswith("GMT")
        tail = client.get(url, headers={"Range": "bytes=-100"})
        assert tail.status_code == 206 and tail.content == data[-100:]
        whole = client.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-type"] == "video/mp4"
        head = client.head(url, headers={"Range": "bytes=0-9"})
        assert head.status_code == 206 and head.headers["content-length"] == "10" and head.content == b""
        stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"an-old-version"'})
        assert stale.status_code == 200 and stale.content == data
        bad = client.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(data)}"
        assert client.get(f"/api/v1/media/{ENV_NAME}/cam1/nope.mp4").status_code == 404

        blob = "uploads/replaced/blob.bin"  # B caches an object's size and ETag a few seconds:
        store.write_bytes(blob, b"a" * 5000)  # a replaced object is re-read, never mixed or refused
        assert client.get(f"/api/v1/media/{blob}", headers={"Range": "bytes=0-9"}).content == b"a" * 10
        store.write_bytes(blob, b"b" * 3000)
        again = client.get(f"/api/v1/media/{blob}", headers={"Range": "bytes=10-19"})
        assert again.status_code == 206 and again.content == b"b" * 10
        assert again.headers["content-range"] == "bytes 10-19/3000"
        store.delete(blob)
        assert client.get(f"/api/v1/media/{blob}", headers={"Range": "bytes=0-9"}).status_code == 404
        checks = client.get("/readyz").json()["checks"]
        assert checks["store"] == "store reachable (S3)" and checks["lake"] == "lake reachable (S3)"

    for instance, session_id in ((first, sid), (second, own)):
        instance.delete_session(session_id)
    for instance in (first, second):
        var = Path(instance.log.name).parent
        assert [p for p in var.rglob("*") if p.suffix in (".mp4", ".avi", ".part")] == []  # no local copy
        log = full_log(instance)
        assert SECRET not in log
        assert not re.search(r"(?:Signature|X-Amz-Credential|AWSAccessKeyId)=(?!\*\*\*)", log)

    seaweed.stop()  # S3 gone: not ready, said at once (one short try, not the client's retries)
    with second.client("viewer") as client:
        began = time.monotonic()
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "store (S3) not reachable" in ready.json()["checks"]["store"]
        assert "lake (S3) not reachable" in ready.json()["checks"]["lake"]
        assert time.monotonic() - began < 10
