"""Real stream servers on loopback for the live-source tests, and their pytest fixtures.

- RTSP: GStreamer's RTSP server (Debian ``gstreamer1.0-rtsp``, ``gir1.2-gst-rtsp-server-1.0``,
  ``python3-gst-1.0``; see ``make system-deps``) run by the SYSTEM python in a subprocess,
  streaming an H.264 clip of the sample video. Tests skip, naming the packages, where it is absent.
- HTTP MJPEG: a small threaded HTTP server answering ``multipart/x-mixed-replace`` with JPEG
  frames of the sample video at its native rate, looped.

Both can be stopped and started again on the same port, to test reconnecting.
Test modules import the fixtures from here (``from live_servers import ...``).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest

from spoton.video import encode_h264, iter_frames

SYSTEM_PYTHON = "/usr/bin/python3"
GST_SERVER_SCRIPT = Path(__file__).with_name("rtsp_server_gst.py")
GST_PACKAGES = ("gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 "
                "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad")
CLIP_FRAMES = 300  # 30 s of the sample video at its 10 fps


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port_closed(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)


def gst_rtsp_missing() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is absent"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import GstRtspServer"], capture_output=True, text=True)
    if probe.returncode != 0:
        return (f"GStreamer's RTSP server is not installed (apt-get install -y {GST_PACKAGES}, "
                f"or `make system-deps`): {probe.stderr.strip().splitlines()[-1:]}")
    return None


class RtspServer:
    """``rtsp://127.0.0.1:{port}/cam`` serving an H.264 MP4 (each client from the start)."""

    def __init__(self, video: Path, port: int | None = None):
        self.video = video
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> "RtspServer":
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(GST_SERVER_SCRIPT), "--port", str(self.port), "--video", str(self.video)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        if line != "READY":
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r} {self.process.stderr.read()}")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()
        self.process = None
        wait_port_closed(self.port)


class MjpegServer:
    """``http://127.0.0.1:{port}/stream.mjpg``: JPEG frames as multipart/x-mixed-replace, looped."""

    BOUNDARY = "spotonframe"

    def __init__(self, jpegs: list[bytes], fps: float, port: int | None = None):
        self.jpegs = jpegs
        self.fps = fps
        self.port = port or free_port()
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type",
                                 f"multipart/x-mixed-replace; boundary={server.BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                index = 0
                started = time.monotonic()
                try:
                    while server.httpd is not None:
                        jpeg = server.jpegs[index % len(server.jpegs)]
                        self.wfile.write(
                            f"--{server.BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                        index += 1
                        delay = started + index / server.fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def start(self) -> "MjpegServer":
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every open stream (clients see the connection drop)."""
        httpd, self.httpd = self.httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        self.thread.join(5)
        wait_port_closed(self.port)


@pytest.fixture(scope="session")
def h264_clip(sample_video, tmp_path_factory) -> Path:
    """The first 30 s of the sample video as H.264 MP4 (what an IP camera would send)."""
    path = tmp_path_factory.mktemp("rtsp") / "clip.mp4"
    frames = (frame.image for frame in iter_frames(sample_video, stop=CLIP_FRAMES))
    return encode_h264(frames, path, fps=10.0)


@pytest.fixture
def rtsp_server(h264_clip):
    if shutil.which(SYSTEM_PYTHON) is None or (reason := gst_rtsp_missing()):
        pytest.skip(reason or f"{SYSTEM_PYTHON} is absent")
    server = RtspServer(h264_clip).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sample_jpegs(sample_video) -> list[bytes]:
    """100 JPEG frames (10 s) of the sample video, half size to keep the stream light."""
    jpegs = []
    for frame in iter_frames(sample_video, stop=100):
        small = cv2.resize(frame.image, (384, 288), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        jpegs.append(data.tobytes())
    return jpegs


@pytest.fixture
def mjpeg_server(sample_jpegs):
    server = MjpegServer(sample_jpegs, fps=10.0).start()
    yield server
    server.stop()


API_KEYS = {"admin-key": "admin", "operator-key": "operator", "viewer-key": "viewer"}
ADMIN = {"Authorization": "Bearer admin-key"}
OPERATOR = {"Authorization": "Bearer operator-key"}
VIEWER = {"Authorization": "Bearer viewer-key"}


def routers_app(store, upload_config=None):
    """A FastAPI app with only the media and upload routers over ``store`` (what ``create_app``
    includes, without the detector warm-up), for fast in-process HTTP tests."""
    from fastapi import FastAPI

    from apps.live_api import media, uploads
    from apps.live_api.auth import AuthConfig, Role

    app = FastAPI()
    app.state.store = store
    app.state.auth = AuthConfig(api_keys={k: Role.parse(r) for k, r in API_KEYS.items()})
    if upload_config is not None:
        app.state.uploads = uploads.UploadService(store, upload_config)
    app.include_router(media.router)
    app.include_router(uploads.router)
    return app
