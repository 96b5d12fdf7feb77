"""Live sources against real inputs: the sample video, a store object, a real RTSP server
(GStreamer) and a real HTTP MJPEG server on loopback, both stopped and restarted."""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from live_api_server import live_server, live_store  # noqa: F401 (fixtures)
from live_servers import h264_clip, mjpeg_server, rtsp_server, sample_jpegs  # noqa: F401 (fixtures)

from spoton.live.sources import ReconnectPolicy, SourceAllowList, SourceError, SourceSpec, open_source
from spoton.storage.store import LocalStore
from spoton.video import iter_frames

FAST_RETRY = ReconnectPolicy(backoff_initial_s=0.2, backoff_max_s=1.0, open_attempts=2, timeout_s=2.0)


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture
def started():
    sources = []

    def start(source):
        sources.append(source.start())
        return source

    yield start
    for source in sources:
        source.stop()


def test_spec_rejects_bad_kinds_and_urls():
    with pytest.raises(SourceError, match="unknown source kind 'webcam'"):
        SourceSpec("webcam", "x")
    with pytest.raises(SourceError, match="must start with rtsp://"):
        SourceSpec("rtsp", "http://127.0.0.1/cam")
    with pytest.raises(SourceError, match="must start with http://"):
        SourceSpec("http", "rtsp://127.0.0.1/cam")
    with pytest.raises(SourceError, match="non-empty uri"):
        SourceSpec("file", " ")


def test_file_source_errors_name_the_problem(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_source(SourceSpec("file", str(tmp_path / "missing.mp4")))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    with pytest.raises(SourceError, match="not a readable video"):
        open_source(SourceSpec("file", str(text)))
    with pytest.raises(SourceError, match="no store was given"):
        open_source(SourceSpec("store", "env/cam1/x.mp4"))
    with pytest.raises(SourceError, match="no object"):
        open_source(SourceSpec("store", "env/cam1/x.mp4"), store=LocalStore(tmp_path / "store"))


def test_lossless_mode_yields_every_frame_in_order(sample_video, started):
    source = started(open_source(SourceSpec("file", str(sample_video)), realtime=False))
    frames = [source.wait_latest(10) for _ in range(12)]
    assert [f.index for f in frames] == list(range(12))
    expected = [f.image for f in iter_frames(sample_video, stop=12)]
    assert all(np.array_equal(f.image, e) for f, e in zip(frames, expected))
    assert source.dropped == 0 and source.state == "running"
    assert source.frame_size == (768, 576) and source.nominal_fps == pytest.approx(10.0)


def test_realtime_file_keeps_only_the_latest_frame_and_counts_drops(sample_video, started):
    source = started(open_source(SourceSpec("file", str(sample_video))))
    wait_for(lambda: source.frames_read >= 12, 10, "12 frames at the native 10 fps")
    frame = source.latest()
    assert frame is not None and frame.index >= 10  # the newest, not the first
    assert source.latest() is None  # taken: nothing new until the next frame is due
    assert source.dropped >= 10 and source.dropped == source.frames_read - 1
    # paced at the native rate: about 10 frames per second, not as fast as decoding allows
    assert 6.0 < source.fps < 14.0, source.fps
    source.stop()
    assert source.state == "stopped"


def test_store_source_loops_at_the_end(sample_video, tmp_path, started):
    store = LocalStore(tmp_path / "store")
    from spoton.video import encode_h264

    encode_h264((f.image for f in iter_frames(sample_video, stop=5)), tmp_path / "short.mp4", 10.0)
    store.upload_file(tmp_path / "short.mp4", "env/cam1/sub_video_01.mp4")
    source = started(open_source(SourceSpec("store", "env/cam1/sub_video_01.mp4"), store=store,
                                 realtime=False))
    indices = [source.wait_latest(10).index for _ in range(12)]
    assert indices == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert source.loops >= 2


def test_file_source_can_end_instead_of_looping(sample_video, tmp_path, started):
    from spoton.video import encode_h264

    path = encode_h264((f.image for f in iter_frames(sample_video, stop=3)), tmp_path / "s.mp4", 10.0)
    source = started(open_source(SourceSpec("file", str(path)), realtime=False, loop=False))
    assert [source.wait_latest(10).index for _ in range(3)] == [0, 1, 2]
    wait_for(lambda: source.state == "stopped", 5, "the source to stop at the end")
    assert source.latest() is None


@pytest.mark.integration
def test_rtsp_stream_reconnects_after_the_server_restarts(rtsp_server, started):
    source = started(open_source(SourceSpec("rtsp", rtsp_server.url), policy=FAST_RETRY))
    wait_for(lambda: source.state == "running" and source.frames_read >= 10, 20, "RTSP frames")
    frame = source.latest()
    assert frame.image.shape == (576, 768, 3) and source.frame_size == (768, 576)
    assert frame.image.std() > 20  # real picture content, not a blank frame
    rtsp_server.stop()
    wait_for(lambda: source.state == "reconnecting", 15, "state 'reconnecting' after the drop")
    assert source.error and rtsp_server.url in source.error
    read_while_down = source.frames_read
    time.sleep(1.5)  # backoff retries against a closed port
    assert source.state == "reconnecting" and source.reconnects >= 2
    rtsp_server.start()
    wait_for(lambda: source.state == "running" and source.frames_read > read_while_down + 5, 30,
             "the stream to come back")
    latest = source.latest()
    assert latest.index >= read_while_down  # indices keep growing across reconnects


@pytest.mark.integration
def test_mjpeg_stream_reconnects_after_the_server_restarts(mjpeg_server, started):
    source = started(open_source(SourceSpec("http", mjpeg_server.url), policy=FAST_RETRY))
    wait_for(lambda: source.state == "running" and source.frames_read >= 10, 20, "MJPEG frames")
    assert source.frame_size == (384, 288)
    assert source.latest().image.std() > 20
    mjpeg_server.stop()
    wait_for(lambda: source.state == "reconnecting", 15, "state 'reconnecting' after the drop")
    read_while_down = source.frames_read
    mjpeg_server.start()
    wait_for(lambda: source.state == "running" and source.frames_read > read_while_down + 5, 30,
             "the stream to come back")


def test_unreachable_stream_fails_with_the_reason(started):
    from live_servers import free_port

    url = f"rtsp://127.0.0.1:{free_port()}/nothing"
    source = started(open_source(SourceSpec("rtsp", url), policy=FAST_RETRY))
    wait_for(lambda: source.state == "failed", 20, "state 'failed'")
    assert "could not open rtsp stream" in source.error and "check the URL" in source.error



def test_stream_with_a_password_never_shows_it(started, caplog):
    from live_servers import free_port

    url = f"rtsp://camuser:S3cretPass@127.0.0.1:{free_port()}/stream"
    spec = SourceSpec("rtsp", url)
    assert spec.uri == url and spec.shown_uri == url.replace("S3cretPass", "***")
    with caplog.at_level(logging.DEBUG, logger="spoton.live.sources"):
        source = started(open_source(spec, policy=FAST_RETRY))
        wait_for(lambda: source.state == "failed", 20, "state 'failed'")
    assert "camuser:***@127.0.0.1" in source.error and "camuser:***@" in repr(source)
    assert caplog.records and all("S3cretPass" not in r.getMessage() for r in caplog.records)
    for bad in ("rtsp://camuser:S3cretPass@host/a\x00b", "http://camuser:S3cretPass@host/x"):
        with pytest.raises(SourceError) as info:
            SourceSpec("rtsp", bad)
        assert "S3cretPass" not in str(info.value) and "camuser:***@" in str(info.value)


def test_allow_list_limits_files_to_media_roots_and_streams_to_hosts(sample_video, tmp_path):
    store = LocalStore(tmp_path / "store")
    allow = SourceAllowList(media_roots=(store.root, sample_video.parent),
                            hosts=("cam1.example", "127.0.0.0/8", "::1"))
    assert open_source(SourceSpec("file", str(sample_video)), allow=allow).spec.uri == str(sample_video)
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"x" * 1234)
    for uri in (str(outside), "/etc/passwd", str(store.root / ".." / "secret.bin")):
        with pytest.raises(SourceError, match="outside the server's media roots") as info:
            open_source(SourceSpec("file", uri), allow=allow)
        assert "1234" not in str(info.value)
    for uri in ("rtsp://cam1.example/s", "rtsp://u:p@127.0.0.1:8554/s", "http://[::1]:8080/x.mjpg",
                "http://localhost/x.mjpg"):  # localhost resolves into 127.0.0.0/8 (and ::1)
        SourceAllowList(hosts=allow.hosts).check(SourceSpec(uri.split(":")[0], uri))
    for uri in ("rtsp://cam2.example/s", "rtsp://10.1.2.3/s", "http://u:pw@192.168.0.9/x.mjpg"):
        with pytest.raises(SourceError, match="not on the server's source host allow-list") as info:
            open_source(SourceSpec(uri.split(":")[0], uri), allow=allow)
        assert "pw@" not in str(info.value)
    SourceAllowList().check(SourceSpec("rtsp", "rtsp://anywhere.example/s"))  # the default: any host
    with pytest.raises(ValueError):
        SourceAllowList(hosts=("10.0.0.0/33",))


def test_source_errors_name_the_key_not_the_server_path(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.write_bytes("env/cam1/sub_video_01.mp4", b"not a video, 28 bytes long.")
    with pytest.raises(SourceError) as info:
        open_source(SourceSpec("store", "env/cam1/sub_video_01.mp4"), store=store)
    message = str(info.value)
    assert "not a readable video" in message and "'env/cam1/sub_video_01.mp4'" in message
    assert str(tmp_path) not in message and "bytes)" not in message
    with pytest.raises(SourceError) as info:
        open_source(SourceSpec("store", "env/cam1/missing.mp4"), store=store)
    assert str(tmp_path) not in str(info.value)


@pytest.mark.integration
def test_session_on_rtsp_goes_reconnecting_and_resumes(live_server, rtsp_server):
    """Through the API: a session whose camera is the RTSP stream follows the stream's drops."""
    created = live_server.create_session(cameras={"cam1": {"kind": "rtsp", "uri": rtsp_server.url}},
                                         tick_rate_hz=2)
    session_id = created["session_id"]
    with live_server.client("viewer") as client:
        def status():
            return client.get(f"/api/v1/sessions/{session_id}").json()

        try:
            wait_for(lambda: status()["state"] == "running", 60, "the session to run on RTSP")
            assert status()["cameras"]["cam1"]["source"] == {"kind": "rtsp", "uri": rtsp_server.url}
            rtsp_server.stop()
            wait_for(lambda: status()["state"] == "reconnecting", 30, "the session to reconnect")
            assert "cam1" in status()["reason"]
            rtsp_server.start()
            wait_for(lambda: status()["state"] == "running", 60, "the session to resume")
            before = status()["cameras"]["cam1"]["frames_read"]
            wait_for(lambda: status()["cameras"]["cam1"]["frames_read"] > before + 5, 30, "new frames")
        finally:
            live_server.delete_session(session_id)
