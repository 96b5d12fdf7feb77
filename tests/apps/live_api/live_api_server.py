"""A real live API (``python -m apps.live_api`` under uvicorn) on a free loopback port, for the tests,
and a throwaway redis-server for several of them to share (never the machine's own on 6379).

The store is a short build of the sample environment (48 source frames: 12-frame sub-videos that
the file sources loop), made once per test session in a tmp folder.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
import websockets

from spoton.sample import ENV_NAME
from spoton.sample.builder import build_sample_environment

REPO_ROOT = Path(__file__).resolve().parents[3]
KEYS = {"admin": "test-admin-key-0123", "operator": "test-operator-key-0123", "viewer": "test-viewer-key-0123"}
JWT_SECRET = "test-jwt-secret-0123456789abcdef"
SAMPLE_SOURCE_FRAMES = 48


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


class LiveApiServer:
    """One API instance in a subprocess; ``stop()`` ends it (and its sessions)."""

    def __init__(self, store_root: Path, *, redis_url: str | None = None, redis_prefix: str = "spoton",
                 extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        env = {**os.environ, "SPOTON_STORE": str(store_root), "SPOTON_LIVE_PORT": str(self.port),
               "SPOTON_API_KEYS": ",".join(f"{key}:{role}" for role, key in KEYS.items()),
               "SPOTON_JWT_SECRET": JWT_SECRET, "SPOTON_BUILD_SAMPLE": "0", "SPOTON_ORT_THREADS": "1",
               "OMP_NUM_THREADS": "1", "SPOTON_REDIS_PREFIX": redis_prefix,
               "SPOTON_WEBRTC_ICE_HOSTS": "127.0.0.1", **(extra_env or {})}  # WebRTC on loopback only
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        self.log = open(Path(store_root).parent / f"live_api_{self.port}.log", "w+")
        self.process = subprocess.Popen([sys.executable, "-m", "apps.live_api"], cwd=REPO_ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 90.0) -> "LiveApiServer":
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"live API exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"live API not ready within {timeout_s} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-5000:]

    def client(self, role: str | None = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=auth(role) if role else {}, timeout=30)

    def create_session(self, **body) -> dict:
        body.setdefault("environment", ENV_NAME)
        with self.client() as client:
            response = client.post("/api/v1/sessions", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def delete_session(self, session_id: str) -> None:
        with self.client() as client:
            client.delete(f"/api/v1/sessions/{session_id}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class RedisServer:
    """A redis-server on a free loopback port, without persistence; killable, restartable on that port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def numpat(self) -> int:
        return int(self.client().execute_command("PUBSUB", "NUMPAT"))


@pytest.fixture(scope="session")
def live_store(tmp_path_factory, sample_video) -> Path:
    root = tmp_path_factory.mktemp("live_store") / "store"
    build_sample_environment(sample_video, root, ENV_NAME, max_source_frames=SAMPLE_SOURCE_FRAMES)
    return root


@pytest.fixture(scope="module")
def live_server(live_store):
    server = LiveApiServer(live_store).wait_ready()
    yield server
    server.stop()


async def next_message(ws, kind: str, timeout_s: float = 20.0, where=lambda m: True) -> dict:
    """The next message of ``kind`` ("tick", "status", "error", "ack") matching ``where``."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {kind} message within {timeout_s} s")
        message = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if message.get("type") == kind and where(message):
            return message


def ws_connect(server: LiveApiServer, session_id: str, role: str = "viewer", **kwargs):
    return websockets.connect(f"{server.ws_base}/ws/sessions/{session_id}?token={KEYS[role]}", **kwargs)
