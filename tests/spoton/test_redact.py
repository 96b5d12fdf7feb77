"""Secrets out of text and out of every log record; store keys and names that no file system takes."""
from __future__ import annotations

import io
import logging

import pytest

from spoton.redact import hide_path, install_log_redaction, redact
from spoton.storage.store import LocalStore, StoreError, check_key, check_name


@pytest.mark.parametrize("text, expected", [
    ("rtsp://camuser:S3cretPass@host/stream", "rtsp://camuser:***@host/stream"),
    ("could not open rtsps://a:b:c@10.0.0.1:554/x after 3 tries", "could not open rtsps://a:***@10.0.0.1:554/x after 3 tries"),
    ("http://u:p%40ss@cam.local/mjpg and http://cam.local:8080/a@b", "http://u:***@cam.local/mjpg and http://cam.local:8080/a@b"),
    ('"GET /api/v1/media/a.mp4?token=abc.def-1&x=1 HTTP/1.1"', '"GET /api/v1/media/a.mp4?token=***&x=1 HTTP/1.1"'),
    ("/ws/sessions/s-1?x=1&access_token=zzz", "/ws/sessions/s-1?x=1&access_token=***"),
    ("rtsp://host/stream (no credentials) and rtsp://user@host/s", "rtsp://host/stream (no credentials) and rtsp://user@host/s"),
    ("open http://s3:8333/b/k.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA1%2F20261203%2Fus-east-1"
     "&X-Amz-Date=20261203T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=0a1b2c failed",
     "open http://s3:8333/b/k.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
     "&X-Amz-Date=20261203T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=*** failed"),
    ("https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIA1&Signature=abc%3D&Expires=1",
     "https://b.s3.amazonaws.com/k?AWSAccessKeyId=***&Signature=***&Expires=1"),
    ("x-amz-security-token=FQo123&x=1", "x-amz-security-token=***&x=1"),
])
def test_redact(text, expected):
    assert redact(text) == expected


def test_hide_path_names_the_key_and_drops_the_size():
    message = "not a readable video: /srv/store/env/cam1/x.mp4 (1234 bytes) – FFmpeg found no video"
    assert hide_path(message, "/srv/store/env/cam1/x.mp4", "'env/cam1/x.mp4'") == \
        "not a readable video: 'env/cam1/x.mp4' – FFmpeg found no video"


def test_log_records_are_redacted_whatever_the_logger():
    factory = logging.getLogRecordFactory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("third.party.lib")
    logger.addHandler(handler)
    try:
        install_log_redaction()
        install_log_redaction()  # idempotent
        url = "rtsp://camuser:S3cretPass@host/stream"
        logger.warning("opening %s (try %d)", url, 2)
        logger.warning("%s %s %s", "127.0.0.1:5000", "GET /media/x.mp4?token=viewer-key-0123456789", 200)
        try:
            raise ValueError(f"cannot open {url}")
        except ValueError:
            logger.exception("failed %r", ConnectionError(url))
    finally:
        logger.removeHandler(handler)
        logging.setLogRecordFactory(factory)
    text = stream.getvalue()
    assert "S3cretPass" not in text and "viewer-key-0123456789" not in text, text
    assert "opening rtsp://camuser:***@host/stream (try 2)" in text
    assert "token=*** 200" in text and "ValueError: cannot open rtsp://camuser:***@host" in text


@pytest.mark.parametrize("key", ["env/environment.json\x00.mp4", "env\x00/environment.json", "env/a\nb.mp4",
                                 "env/\x7f.mp4", "", "../x", "/etc/passwd", "a\\b"])
def test_check_key_refuses_bad_keys(key):
    with pytest.raises(StoreError, match="invalid store key"):
        check_key(key)


def test_local_store_answers_store_errors_for_nul_keys_and_hides_its_root(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.write_bytes("env/environment.json", b"{}")
    for call in (store.exists, store.read_bytes, store.local_path):
        with pytest.raises(StoreError):  # not ValueError('embedded null byte')
            call("env/environment.json\x00.mp4")
    with pytest.raises(StoreError) as info:
        store.read_bytes("env/missing.json")
    assert str(tmp_path) not in str(info.value) and "'env/missing.json'" in str(info.value)


@pytest.mark.parametrize("name", ["pets_s2l1\x00", "a/b", ".hidden", "", "cam\t1", "..", "a\\b"])
def test_check_name_refuses_bad_names(name):
    with pytest.raises(StoreError, match="invalid environment name"):
        check_name(name, "environment")
    assert check_name("pets_s2l1", "environment") == "pets_s2l1"
