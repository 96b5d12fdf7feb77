"""Media serving with HTTP Range over a real store folder: partial content, bad ranges, validators,
traversal attempts and unknown keys; and the S3 path's calls to a real SeaweedFS."""
from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient
from live_servers import VIEWER, routers_app

from apps.live_api.media import parse_range
from spoton.storage.store import LocalStore
from spoton.video import encode_h264, iter_frames

KEY = "pets_s2l1/cam1/sub_video_01.mp4"


@pytest.fixture(scope="module")
def store(sample_video, tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    store = LocalStore(root / "store")
    clip = encode_h264((f.image for f in iter_frames(sample_video, stop=10)), root / "clip.mp4", 10.0)
    store.upload_file(clip, KEY)
    store.write_bytes("uploads/abc/frames/000000.jpg", b"\xff\xd8\xff\xe0 jpeg bytes")
    (root / "secret.txt").write_text("outside the store")
    os.symlink(root / "secret.txt", root / "store" / "pets_s2l1" / "link.txt")
    (root / "store" / "pets_s2l1" / ".hidden.mp4.part").write_bytes(b"partial")
    return store


@pytest.fixture(scope="module")
def client(store):
    with TestClient(routers_app(store)) as client:
        yield client


@pytest.fixture(scope="module")
def video_bytes(store):
    return store.read_bytes(KEY)


def test_whole_object_with_content_type_and_accept_ranges(client, video_bytes):
    response = client.get(f"/api/v1/media/{KEY}", headers=VIEWER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert int(response.headers["content-length"]) == len(video_bytes)
    assert response.content == video_bytes
    frame = client.get("/api/v1/media/uploads/abc/frames/000000.jpg", headers=VIEWER)
    assert frame.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", -50, None),
    ("bytes=10-99999999", 10, None),  # past the end: clipped to the last byte
])
def test_single_range_is_206_with_content_range(client, video_bytes, header, start, end):
    size = len(video_bytes)
    expected = video_bytes[start:] if end is None else video_bytes[start:end + 1]
    response = client.get(f"/api/v1/media/{KEY}", headers={**VIEWER, "Range": header})
    assert response.status_code == 206
    first = start % size
    assert response.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{size}"
    assert int(response.headers["content-length"]) == len(expected)
    assert response.content == expected


@pytest.mark.parametrize("header", ["bytes=99999999-", "bytes=50-10", "bytes=abc", "bytes=-0",
                                    "items=0-10", "bytes=-"])
def test_bad_or_unsatisfiable_range_is_416(client, video_bytes, header):
    response = client.get(f"/api/v1/media/{KEY}", headers={**VIEWER, "Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(video_bytes)}"
    assert "range" in response.json()["detail"].lower()


def test_several_ranges_get_the_whole_object(client, video_bytes):
    response = client.get(f"/api/v1/media/{KEY}", headers={**VIEWER, "Range": "bytes=0-9,20-29"})
    assert response.status_code == 200 and response.content == video_bytes


def test_head_reports_size_without_a_body(client, video_bytes):
    response = client.head(f"/api/v1/media/{KEY}", headers={**VIEWER, "Range": "bytes=0-9"})
    assert response.status_code == 206 and response.content == b""
    assert response.headers["content-range"] == f"bytes 0-9/{len(video_bytes)}"


@pytest.mark.parametrize("path", [
    "/api/v1/media/%2e%2e/secret.txt",
    "/api/v1/media/pets_s2l1/%2e%2e/%2e%2e/secret.txt",
    "/api/v1/media/..%2F..%2Fsecret.txt",
    "/api/v1/media/%2Fetc%2Fpasswd",
    "/api/v1/media/pets_s2l1/link.txt",  # a symlink pointing outside the store
    "/api/v1/media/pets_s2l1/.hidden.mp4.part",
    "/api/v1/media/pets_s2l1/cam9/nothing.mp4",
    "/api/v1/media/pets_s2l1",  # a folder, not an object
])
def test_traversal_hidden_and_unknown_keys_are_404(client, path):
    response = client.get(path, headers=VIEWER)
    assert response.status_code == 404, (path, response.status_code)
    assert "outside the store" not in response.text


def test_auth_header_or_query_token(client):
    assert client.get(f"/api/v1/media/{KEY}").status_code == 401
    assert client.get(f"/api/v1/media/{KEY}", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(f"/api/v1/media/{KEY}?token=viewer-key").status_code == 200  # <video src>


def test_parse_range_edges():
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=-20", 10) == (0, 9)  # suffix longer than the object: all of it
    assert parse_range(" bytes = 3 - 4 ", 10) == (3, 4)
    assert parse_range("bytes=0-1, 4-5", 10) is None
    with pytest.raises(ValueError, match="starts at or past the end"):
        parse_range("bytes=10-", 10)
    with pytest.raises(ValueError, match="no bytes"):
        parse_range("bytes=-5", 0)


def test_local_media_carries_validators_and_honours_if_range(client, video_bytes):
    whole = client.get(f"/api/v1/media/{KEY}", headers=VIEWER)
    etag, modified = whole.headers["etag"], whole.headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    for validator in (etag, modified):  # the current version: the range
        part = client.get(f"/api/v1/media/{KEY}", headers={**VIEWER, "Range": "bytes=0-9", "If-Range": validator})
        assert part.status_code == 206 and part.content == video_bytes[:10]
    stale = client.get(f"/api/v1/media/{KEY}", headers={**VIEWER, "Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == video_bytes


def test_s3_ranges_cost_one_get_each_after_the_first_head(tmp_path):
    """A player's run of Range requests on S3: one HEAD, then a single ranged GET per request (counted
    on the real client's calls to a real SeaweedFS)."""
    from orchestration.services import SeaweedServer, ServiceError
    from spoton.storage.store import S3Store, s3_client

    try:
        server = SeaweedServer(tmp_path / "seaweed", "media-test", "media-test-secret").start()
    except ServiceError as error:
        pytest.skip(str(error))
    try:
        s3 = s3_client(endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=server.access,
                       aws_secret_access_key=server.secret)
        calls: list[str] = []
        s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
        store = S3Store(s3, "media-test", "store", cache_dir=tmp_path / "cache")
        store.ensure_bucket()
        data = bytes(range(256)) * 400
        store.write_bytes("env/cam/x.bin", data)
        calls.clear()
        with TestClient(routers_app(store)) as api:
            for start in range(0, 500, 100):
                part = api.get("/api/v1/media/env/cam/x.bin",
                                         headers={**VIEWER, "Range": f"bytes={start}-{start + 99}"})
                assert part.status_code == 206 and part.content == data[start:start + 100]
        assert calls == ["HeadObject"] + ["GetObject"] * 5
        assert not (tmp_path / "cache").exists()
    finally:
        server.stop()
