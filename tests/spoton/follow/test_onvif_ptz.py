"""The ONVIF PTZ adapter against the loopback PTZ camera simulator (real SOAP over HTTP, real client)."""
from __future__ import annotations

import cv2
import httpx
import numpy as np
import pytest

from spoton.follow.ptz import PtzError
from spoton.follow.onvif import OnvifPtz, OnvifPtzConfig
from support.ptz_simulator import ManualClock, PtzCameraSimulator

pytestmark = pytest.mark.integration
PASSWORD = "sim-secret-pass-42"


@pytest.fixture
def clock():
    return ManualClock(100.0)


@pytest.fixture
def simulator(sample_video, clock):
    with PtzCameraSimulator(sample_video, user="admin", password=PASSWORD, clock=clock) as sim:
        yield sim


def connect(sim, password: str = PASSWORD) -> OnvifPtz:
    return OnvifPtz(OnvifPtzConfig("127.0.0.1", sim.port, "admin", password, timeout_s=10))


def test_move_stop_status_and_presets(simulator, clock):
    with connect(simulator) as ptz:
        assert ptz.profile_token == "profile_1"
        assert not ptz.status().moving
        ptz.continuous_move(0.0, 0.0, 1.0)
        clock.now += 1.0  # zoom speed 0.5 per second at velocity 1
        status = ptz.status()
        assert status.moving and status.position.zoom == pytest.approx(0.5, abs=1e-4)
        ptz.continuous_move(1.0, 1.0, 0.0)
        clock.now += 0.5
        ptz.stop()
        stopped = ptz.status()
        assert not stopped.moving
        assert (stopped.position.pan, stopped.position.tilt) == pytest.approx((0.3, 0.3), abs=1e-4)
        ptz.save_preset("door")
        ptz.continuous_move(-1.0, 0.0, -1.0)
        clock.now += 2.0
        ptz.stop()
        assert ptz.status().position.zoom == 0.0
        ptz.goto_preset("door")
        assert ptz.status().position.pan == pytest.approx(0.3, abs=1e-4)
        with pytest.raises(PtzError, match="no preset 'gate'"):
            ptz.goto_preset("gate")
        with pytest.raises(PtzError, match="pan velocity"):
            ptz.continuous_move(2.0, 0, 0)
        assert ptz.stream_uri() == f"{simulator.base}/stream.mjpg"
    for operation in ("GetServices", "GetProfiles", "ContinuousMove", "Stop", "GetStatus", "SetPreset",
                      "GotoPreset", "GetPresets", "GetStreamUri"):
        assert operation in simulator.requests


def test_the_camera_picture_follows_the_ptz(simulator, clock):
    """The MJPEG camera shows the viewport: zoomed in, the frame is the centre of the wide one, enlarged."""
    with connect(simulator) as ptz:
        wide = cv2.imdecode(np.frombuffer(httpx.get(f"{simulator.base}/snapshot.jpg").content, np.uint8), 1)
        ptz.continuous_move(0.0, 0.0, 1.0)
        clock.now += 1.0
        ptz.stop()
    clock.now -= 1.0  # the same video frame as the wide snapshot
    capture = cv2.VideoCapture(f"{simulator.base}/stream.mjpg")
    ok, zoomed = capture.read()
    capture.release()
    assert ok and zoomed.shape == wide.shape
    centre = cv2.resize(wide[144:432, 192:576], (768, 576))  # zoom 0.5 = factor 2 on 768x576
    assert np.abs(zoomed.astype(int) - centre.astype(int)).mean() < 12
    assert np.abs(zoomed.astype(int) - wide.astype(int)).mean() > 25


def test_wrong_password_and_dead_camera_give_clear_errors_without_the_password(simulator):
    with pytest.raises(PtzError) as info:
        connect(simulator, password="wrong-password-77")
    assert "127.0.0.1" in str(info.value) and "wrong-password-77" not in str(info.value)
    assert "not authorized" in str(info.value).lower()
    port = simulator.port
    simulator.stop()
    with pytest.raises(PtzError) as info:
        OnvifPtz(OnvifPtzConfig("127.0.0.1", port, "admin", PASSWORD, timeout_s=3))
    assert f"127.0.0.1:{port}" in str(info.value) and PASSWORD not in str(info.value)
