"""The virtual PTZ's geometry and motion, and the framing controller's step response."""
import numpy as np
import pytest

from spoton.follow.controller import AxisController, AxisLimits, FramingController
from support.ptz_simulator import ManualClock
from spoton.follow.ptz import PtzError, PtzGeometry, PtzPosition, VirtualPtz, VirtualPtzConfig

GEOMETRY = PtzGeometry((768, 576), max_zoom=4.0)


def test_viewport_geometry_and_clamping():
    assert np.allclose(GEOMETRY.viewport(PtzPosition()), [0, 0, 768, 576])
    half = GEOMETRY.viewport(PtzPosition(zoom=0.5))  # factor 2
    assert np.allclose(half, [192, 144, 576, 432])
    right = GEOMETRY.viewport(PtzPosition(pan=1.0, zoom=0.5))  # clamped to the right edge
    assert np.allclose(right, [384, 144, 768, 432])
    assert GEOMETRY.clamp(PtzPosition(pan=1.0, zoom=0.5)).pan == pytest.approx(0.5)


def test_boxes_round_trip_between_picture_and_viewport():
    position = PtzPosition(pan=0.2, tilt=-0.1, zoom=0.7)
    boxes = np.array([[300, 200, 340, 300], [400, 250, 420, 290]], float)
    in_view = GEOMETRY.to_viewport(boxes, position)
    back = GEOMETRY.to_picture(in_view * [640, 480, 640, 480], position, (640, 480))
    assert np.allclose(back, boxes)


def test_render_shows_the_viewport():
    picture = np.zeros((576, 768, 3), np.uint8)
    picture[144:432, 192:576] = 255  # exactly the zoom-2 centre viewport
    out = GEOMETRY.render(picture, PtzPosition(zoom=0.5), (384, 288))
    assert out.shape == (288, 384, 3) and out[2:-2, 2:-2].min() == 255


def test_continuous_move_integrates_on_the_clock_and_stops():
    clock = ManualClock()
    ptz = VirtualPtz(GEOMETRY, VirtualPtzConfig(pan_speed=0.5, zoom_speed=0.5), clock)
    ptz.continuous_move(0, 0, 1.0)
    clock.now = 1.0
    ptz.continuous_move(1.0, -1.0, 0.0)
    clock.now = 1.4
    status = ptz.status()
    assert status.moving
    assert (status.position.pan, status.position.tilt, status.position.zoom) == pytest.approx((0.2, -0.2, 0.5))
    ptz.stop()
    clock.now = 5.0
    assert not ptz.status().moving and ptz.status().position.pan == pytest.approx(0.2)


def test_presets_and_bad_requests():
    clock = ManualClock()
    ptz = VirtualPtz(GEOMETRY, clock=clock)
    ptz.set_position(PtzPosition(0.1, 0.1, 0.5))
    ptz.save_preset("door")
    ptz.set_position(PtzPosition())
    ptz.goto_preset("door")
    assert ptz.status().position == PtzPosition(0.1, 0.1, 0.5)
    with pytest.raises(PtzError, match="no preset 'gate'"):
        ptz.goto_preset("gate")
    with pytest.raises(PtzError, match="preset name"):
        ptz.save_preset("../x")
    with pytest.raises(PtzError, match=r"pan velocity must be a number in \[-1, 1\]"):
        ptz.continuous_move(1.5, 0, 0)


def follow_still_target(box_px: np.ndarray, start: PtzPosition, steps: int = 200, dt: float = 1 / 7):
    """Closed loop with one frame of delay: the command made on frame k moves the PTZ until frame k+1."""
    clock = ManualClock()
    ptz = VirtualPtz(GEOMETRY, clock=clock)
    ptz.set_position(start)
    controller = FramingController(GEOMETRY)
    pan_errors, tilt_errors, pan_commands, zoom_errors = [], [], [], []
    for _ in range(steps):
        position = ptz.status().position
        box = GEOMETRY.to_viewport(box_px, position)[0]
        pan_error, _, zoom_error = controller.errors(box, position)
        pan_errors.append((box[0] + box[2]) / 2 - 0.5)  # viewport fraction
        tilt_errors.append((box[1] + box[3]) / 2 - 0.5)
        zoom_errors.append(zoom_error)
        command = controller.command(box, position, dt)
        pan_commands.append(command[0])
        ptz.continuous_move(*command)
        clock.now += dt
    return np.array(pan_errors), np.array(tilt_errors), np.array(pan_commands), np.array(zoom_errors)


@pytest.mark.parametrize("box_px, start", [
    (np.array([[600, 300, 630, 380]]), PtzPosition(zoom=0.6)),  # to the right, zoomed in
    (np.array([[100, 150, 125, 220]]), PtzPosition(pan=0.4, zoom=0.8)),  # far left and up, zoomed in further
    (np.array([[350, 420, 380, 500]]), PtzPosition(tilt=0.3, zoom=0.5)),  # below the view
    (np.array([[380, 250, 410, 330]]), PtzPosition()),  # centred: zoom only
])
def test_step_response_settles_without_overshoot(box_px, start):
    errors, tilt_errors, commands, zoom_errors = follow_still_target(box_px, start)
    for axis in (errors, tilt_errors):
        first = axis[0]
        overshoot = max(0.0, float(np.max(-np.sign(first) * axis))) if abs(first) > 0.02 else 0.0
        assert overshoot <= 0.03, f"overshoot {overshoot:.3f} of the viewport"
        assert abs(axis[-1]) <= 0.03 * 4  # within the dead zone (pan units = 2/zoom factor per viewport)
    assert abs(zoom_errors[-1]) <= 0.08
    assert np.all(commands[-20:] == 0.0), "the PTZ must come to rest on a still target"
    moving = commands[commands != 0]
    assert np.count_nonzero(np.diff(np.sign(moving))) <= 1, "the pan command must not oscillate"


def test_axis_respects_max_speed_and_acceleration():
    limits = AxisLimits(gain=10.0, dead_zone=0.01, max_speed=0.5, max_accel=1.0)
    axis = AxisController(limits)
    speeds = [axis.step(2.0, 0.1) for _ in range(20)]
    assert max(speeds) == pytest.approx(0.5)
    assert np.all(np.diff(speeds) <= 1.0 * 0.1 + 1e-9)


def test_lost_target_stops_panning_and_zooms_out():
    controller = FramingController(GEOMETRY)
    controller.command(np.array([0.8, 0.4, 0.85, 0.6]), PtzPosition(zoom=0.5), 0.1)
    pan, tilt, zoom = controller.command(None, PtzPosition(zoom=0.5), 0.1)
    assert (pan, tilt) == (0.0, 0.0) and zoom < 0
    assert controller.command(None, PtzPosition(zoom=0.0), 0.1)[2] == 0.0
