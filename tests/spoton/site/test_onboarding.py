"""`spoton env ...` on a real store folder: a site is created, gets a camera from a video, is
calibrated and given a region and a zone; every refused input exits 2 with a message naming the
problem and changes nothing (the current version stays)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from spoton.cli import main
from spoton.site.onboarding import check_simple_polygon, fit_calibration, OnboardingError, scale_from_points
from spoton.site.storage import current_version, load_environment
from spoton.storage.store import LocalStore
from spoton.video import iter_frames, probe

REPO_ROOT = Path(__file__).resolve().parents[3]
PLAN = REPO_ROOT / "data" / "environments" / "pets_s2l1" / "floor_plan.png"
PAIRS = json.loads((REPO_ROOT / "data" / "calibration" / "pets_s2l1_view_001.json").read_text())
ENV, CAMERA = "plaza", "north"


def pairs_csv(path: Path, image_points, map_points, header="image_x,image_y,map_x,map_y") -> Path:
    lines = [header] + [f"{a},{b},{x},{y}" for (a, b), (x, y) in zip(image_points, map_points)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def mjpeg_clip(sample_video, tmp_path_factory) -> Path:
    """10 frames of the sample video as Motion-JPEG AVI (not H.264: adding it must transcode)."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (768, 576))
    for frame in iter_frames(sample_video, stop=10):
        writer.write(frame.image)
    writer.release()
    return path


@pytest.fixture
def site(tmp_path, mjpeg_clip, capsys):
    """A store with the site and its video camera; returns the store."""
    store = tmp_path / "store"
    assert main(["env", "create", ENV, "--store", str(store), "--floor-plan", str(PLAN),
                 "--scale-points", "0,0,200,0", "--distance-m", "10", "--origin-m=-22,20", "--y-axis", "up",
                 "--segment-length-s", "0.5"]) == 0
    assert main(["env", "add-camera", ENV, CAMERA, "--store", str(store), "--video", str(mjpeg_clip)]) == 0
    capsys.readouterr()
    return LocalStore(store)


def run(store: LocalStore, *args: str) -> int:
    command, rest = args[0], list(args[1:])
    return main(["env", command, *rest[:1], "--store", str(store.root), *rest[1:]])


def test_a_video_camera_is_cut_into_h264_sub_videos_of_the_site_segment_length(site):
    env = load_environment(site, ENV)
    assert env.floor_plan.metres_per_pixel == pytest.approx(0.05) and env.floor_plan.size_px == (700, 780)
    assert env.fps == 7.0 and env.camera(CAMERA).resolution == (768, 576)
    keys = sorted(k for k in site.list_keys(f"{ENV}/{CAMERA}/"))
    assert keys == [f"{ENV}/{CAMERA}/sub_video_{i:02d}.mp4" for i in (1, 2, 3)]  # 0.5 s at 7 fps: 4 + 4 + 2
    infos = [probe(site.local_path(k), exact_count=True) for k in keys]
    assert [i.codec for i in infos] == ["h264"] * 3 and [i.frame_count for i in infos] == [4, 4, 2]
    assert current_version(site, ENV) == 2


def test_calibrate_region_zone_then_show_and_list(site, tmp_path, capsys):
    points = pairs_csv(tmp_path / "pairs.csv", PAIRS["image_points"], PAIRS["map_points"])
    assert run(site, "calibrate", ENV, CAMERA, "--points", str(points)) == 0
    out = capsys.readouterr().out
    rms = float(out.split("RMS error ")[1].split(" m")[0])
    assert rms < 0.3 and "(15 rows)" in out
    assert run(site, "region", ENV, CAMERA, "--polygon", "0,300;767,300;767,575;0,575") == 0
    assert run(site, "zone", ENV, "crossing", "--polygon=-11,-10.5;-5,-10.5;-5,-3.5;-11,-3.5") == 0
    env = load_environment(site, ENV)
    camera = env.camera(CAMERA)
    assert camera.calibration.reprojection_error_m < 0.3 and len(camera.tracked_region_m) == 4
    # the region's corners are the image corners mapped through the calibration onto the floor
    assert camera.spec().region_m is not None and [z.name for z in env.zones] == ["crossing"]
    capsys.readouterr()
    assert run(site, "show", ENV) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 5 and shown["cameras"][0]["calibrated"] and len(shown["cameras"][0]["sub_videos"]) == 3
    assert run(site, "list") == 0
    assert ENV in capsys.readouterr().out


def refused(capsys, code: int, *needles: str) -> str:
    captured = capsys.readouterr()
    assert code == 2, captured
    for needle in needles:
        assert needle in captured.err, captured.err
    return captured.err


@pytest.mark.parametrize("rows, message", [
    (lambda p: pairs_csv(p, PAIRS["image_points"], PAIRS["map_points"], "image_x,image_y,map_x"), "lacks the column"),
    (lambda p: pairs_csv(p, [[1, 2], [3, float("nan")]] + PAIRS["image_points"][2:], PAIRS["map_points"]), "NaN"),
    (lambda p: pairs_csv(p, PAIRS["image_points"][:3], PAIRS["map_points"][:3]), "at least 4 point pairs"),
    (lambda p: pairs_csv(p, [[10 * i, 10 * i] for i in range(6)], [[i, i] for i in range(6)]), "one line"),
    (lambda p: pairs_csv(p, PAIRS["image_points"], np.array(PAIRS["map_points"]) * [[1, 1]] * 1.0
                         + np.random.default_rng(0).normal(0, 2.0, (15, 2))), "above the 0.5 m threshold"),
    (lambda p: p.with_name("missing.csv"), "no calibration file"),
])
def test_a_refused_calibration_exits_2_and_keeps_the_version(site, tmp_path, capsys, rows, message):
    assert run(site, "calibrate", ENV, CAMERA, "--points", str(rows(tmp_path / "pairs.csv"))) == 2
    refused(capsys, 2, message)
    assert current_version(site, ENV) == 2 and load_environment(site, ENV).camera(CAMERA).calibration is None


def test_bad_input_is_refused_with_the_fix_and_nothing_lost(site, tmp_path, mjpeg_clip, capsys):
    text = tmp_path / "plan.png"
    text.write_text("not an image")
    refused(capsys, run(site, "create", "other", "--floor-plan", str(text), "--metres-per-pixel", "0.05"),
            "not a PNG or JPEG")
    refused(capsys, run(site, "create", "other", "--floor-plan", str(PLAN)), "--metres-per-pixel")
    refused(capsys, run(site, "create", ENV, "--floor-plan", str(PLAN), "--metres-per-pixel", "0.05"),
            "already exists")
    refused(capsys, run(site, "add-camera", ENV, CAMERA, "--video", str(mjpeg_clip)), "already has a camera")
    refused(capsys, run(site, "add-camera", ENV, "south", "--video", str(text)), "south")
    refused(capsys, run(site, "add-camera", "nowhere", "south", "--video", str(mjpeg_clip)), "no site 'nowhere'")
    refused(capsys, run(site, "region", ENV, CAMERA, "--polygon", "0,300;767,300;767,575"), "calibrate it first")
    refused(capsys, run(site, "zone", ENV, "bowtie", "--polygon", "0,0;4,4;4,0;0,4"), "crosses itself")
    refused(capsys, run(site, "zone", ENV, "bad", "--polygon", "0,0;4;4,0"), "x,y")
    assert current_version(site, ENV) == 2 and not site.list_keys(f"{ENV}/south/")
    assert sorted(site.list_keys("other/")) == [], "a refused create writes nothing"


class Answer(BaseHTTPRequestHandler):
    """A web server that is no camera: 401 on /private, an HTML page elsewhere."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/private":
            self.send_error(401)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>hello</html>")


@pytest.fixture
def web_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_uri_camera_that_does_not_answer_says_why_and_never_prints_its_password(site, web_server, capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    cases = [(f"rtsp://admin:s3cret@127.0.0.1:{closed}/stream", "connection refused"),
             (f"http://admin:s3cret@{web_server}/private", "authentication failed"),
             (f"http://admin:s3cret@{web_server}/index.html", "not a video")]
    for uri, reason in cases:
        error = refused(capsys, run(site, "add-camera", ENV, "gate", "--uri", uri), reason, "***")
        assert "s3cret" not in error
    assert current_version(site, ENV) == 2


def test_scale_calibration_and_polygon_rules():
    assert scale_from_points(0, 0, 300, 400, 25.0) == pytest.approx(0.05)
    with pytest.raises(OnboardingError, match="same pixel"):
        scale_from_points(5, 5, 5, 5, 1.0)
    report = fit_calibration(PAIRS["image_points"], PAIRS["map_points"])
    assert len(report.point_errors_m) == 15 and report.rms_error_m == pytest.approx(
        np.sqrt(np.mean(np.square(report.point_errors_m))))
    assert report.rms_error_m < 0.1 and report.max_error_m >= report.rms_error_m
    assert check_simple_polygon([[0, 0], [4, 0], [4, 4], [0, 4]], "square").shape == (4, 2)
    with pytest.raises(OnboardingError, match="no area"):
        check_simple_polygon([[0, 0], [1, 1], [2, 2]], "flat")


def test_a_deleted_camera_keeps_its_videos_and_its_name_is_not_reused(site, mjpeg_clip):
    from spoton.site.ingest import add_video_camera
    from spoton.site.onboarding import delete_camera, restore_site

    assert delete_camera(site, ENV, CAMERA) == 3 and load_environment(site, ENV).camera_names == ()
    with pytest.raises(OnboardingError, match="keeps the videos of an earlier camera") as refused:
        add_video_camera(site, ENV, CAMERA, mjpeg_clip)
    assert refused.value.status == 409 and len(site.list_keys(f"{ENV}/{CAMERA}/")) == 3
    assert restore_site(site, ENV, 2) == 4 and load_environment(site, ENV).camera_names == (CAMERA,)


def test_a_disabled_camera_is_stored_as_such_and_enabled_again(site):
    from spoton.site.onboarding import enable_camera
    from spoton.site.storage import version_key

    assert enable_camera(site, ENV, CAMERA, False) == 3
    assert json.loads(site.read_bytes(version_key(ENV, 3)))["cameras"][0]["enabled"] is False
    assert load_environment(site, ENV).camera(CAMERA).enabled is False
    assert enable_camera(site, ENV, CAMERA, True) == 4
    assert "enabled" not in json.loads(site.read_bytes(version_key(ENV, 4)))["cameras"][0], \
        "an enabled camera is stored as before the flag existed"


def test_add_camera_prints_progress_and_the_path_taken(tmp_path, sample_clip, capsys):
    """The CLI runs the same core as the API's upload jobs: an H.264 video with a keyframe every
    half second is cut by stream copy, and the stages show as they pass."""
    store = tmp_path / "store"
    assert main(["env", "create", ENV, "--store", str(store), "--floor-plan", str(PLAN),
                 "--metres-per-pixel", "0.05", "--segment-length-s", "0.5"]) == 0
    clip = sample_clip("gop5.mp4", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "5")
    capsys.readouterr()
    assert main(["env", "add-camera", ENV, CAMERA, "--store", str(store), "--video", str(clip)]) == 0
    lines = capsys.readouterr().out.splitlines()
    stages = [line.split()[0] for line in lines if line.startswith("  ") and "%" in line]
    assert stages[0] == "checking" and "cutting" in stages and stages[-1] == "registering", lines
    assert "transcoding" not in stages
    assert lines[-1].startswith(f"camera '{CAMERA}' added to '{ENV}' (version 2): 5 sub-videos by copy"), lines
    assert f"  {ENV}/{CAMERA}/sub_video_05.mp4: 5 frames" in lines
