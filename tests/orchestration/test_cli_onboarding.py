"""Bring your own site with the CLI alone, from an empty store: `spoton env create` from the sample's
floor-plan picture and scale, `add-camera` with a clip of the sample video (H.264: stream copy;
MJPEG: transcoded), `calibrate` with the real PETS point pairs, `region`, `zone`, `spoton run`
through Dagster, then `spoton sql`."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from spoton.site.onboarding import enable_camera
from spoton.storage.store import LocalStore
from spoton.video import _ffmpeg_exe, iter_frames

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
PLAN = REPO_ROOT / "data" / "environments" / "pets_s2l1" / "floor_plan.png"
CALIBRATION = REPO_ROOT / "data" / "calibration" / "pets_s2l1_view_001.json"


def spoton(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spoton.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT)


def test_a_site_built_with_the_cli_materializes_and_answers_sql(sample_video, tmp_path, monkeypatch):
    import os

    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "SPOTON_STORE", "SPOTON_CATALOG")}
    env |= {"SPOTON_VAR": str(var), "SPOTON_ORT_THREADS": "1"}
    clip = tmp_path / "clip.avi"  # Motion JPEG: add-camera transcodes it to H.264
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (768, 576))
    for frame in iter_frames(sample_video, stop=14):
        writer.write(frame.image)
    writer.release()
    h264 = tmp_path / "clip.mp4"  # the same frames as H.264 with a keyframe every segment: cut by stream copy
    subprocess.run([_ffmpeg_exe(), "-v", "error", "-i", str(clip), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-g", "7", str(h264)], check=True)
    pairs = json.loads(CALIBRATION.read_text())
    points = tmp_path / "pairs.csv"
    points.write_text("image_x,image_y,map_x,map_y\n" + "".join(
        f"{a},{b},{x},{y}\n" for (a, b), (x, y) in zip(pairs["image_points"], pairs["map_points"])))

    steps = [
        ["env", "list"],
        # the sample plan: 20 pixels per metre, (-22, 20) m at its top-left corner, +Y up
        ["env", "create", "plaza", "--floor-plan", str(PLAN), "--metres-per-pixel", "0.05", "--origin-m=-22,20",
         "--y-axis", "up", "--segment-length-s", "1"],
        ["env", "add-camera", "plaza", "north", "--video", str(h264)],
        ["env", "calibrate", "plaza", "north", "--points", str(points)],
        ["env", "region", "plaza", "north", "--polygon", "0,200;767,200;767,575;0,575"],
        ["env", "zone", "plaza", "crossing", "--polygon=-11,-10.5;-5,-10.5;-5,-3.5;-11,-3.5"],
        ["env", "add-camera", "plaza", "south", "--video", str(clip)],
        ["env", "show", "plaza"],
    ]
    outputs = []
    for step in steps:
        result = spoton(*step, env=env)
        assert result.returncode == 0, (step, result.stderr)
        outputs.append(result.stdout)
    assert "(0 rows)" in outputs[0], "the store starts empty"
    assert "sub_video_02.mp4: 7 frames" in outputs[2] and "2 sub-videos by copy" in outputs[2]
    assert "2 sub-videos by transcode" in outputs[6], "MJPEG is re-encoded"
    rms = float(outputs[3].split("RMS error ")[1].split(" m")[0])
    assert rms < 0.3
    shown = json.loads(outputs[-1])
    assert shown["version"] == 6 and shown["zones"][0]["name"] == "crossing"
    assert shown["cameras"][0]["calibrated"] and shown["cameras"][0]["region_m"] is not None

    assert enable_camera(LocalStore(var / "store"), "plaza", "south", False) == 7  # what the API's disable does

    run = spoton("run", "plaza", "--workers", "1", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    progress = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert [line.split()[1] for line in progress] == ["plaza|01", "plaza|02", "plaza"]
    assert all(" ok " in line for line in progress)

    def sql(query: str) -> list[str]:
        result = spoton("sql", query, env=env)
        assert result.returncode == 0, result.stderr
        return [row.rstrip() for row in result.stdout.splitlines()[2:-1]]  # no header, rule or count

    assert sql("select distinct camera from frames") == ["north"], "a disabled camera is not materialized"
    assert sql("select count(distinct global_frame) from frames") == ["14"]
    (people,) = sql("select count(distinct global_id) from global_identities")
    assert int(people) >= 2, "the plaza clip has several people in view"
    assert sql("select distinct zone from occupancy") == ["crossing"]
    (xmin, xmax), = [row.split(" | ") for row in sql("select min(map_x), max(map_x) from map_trajectories")]
    assert -22.0 <= float(xmin) <= float(xmax) <= 13.0, "metres on the sample plan"
