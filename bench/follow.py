"""Following a person over the sample video through a PTZ camera, closed loop, scored on the PETS ground truth.

detect -> track -> follow -> PTZ command -> the camera moves -> next frame. The camera is the
loopback ONVIF PTZ simulator (``--camera sim``: SOAP over HTTP through the real ONVIF client,
frames fetched as JPEG snapshots of its viewport) or the in-process virtual PTZ (``--camera
virtual``). Time is the video's: frame k is shown at k / fps, and the PTZ moves on that clock,
so a run is deterministic and does not depend on this machine's speed.

The person is the ground truth's ``--gt-id``, chosen at ``--start-frame`` (the tracker's track
that overlaps its box). Printed: the fraction of frames in which the person is visible (in the
ground truth) with its box centre in the central 30% of the viewport (both axes), the fraction
of those frames with the follower on the right person, time to lock, the re-acquisitions (the
frames; whether each took up the right person) and the PTZ commands sent.

    .venv/bin/python bench/follow.py                       # sim camera, person 9, frames 0..399
    .venv/bin/python bench/follow.py --camera virtual --gt-id 15 --frames 200

``--live position|appearance`` follows as a live session does instead: detect and track on the
wide picture (the calibrated source view), the target is a live *global id*
(:class:`spoton.live.identity.LiveIdentityGallery`, floor position only or with appearance), its
phase from whether that id is in view, and the virtual PTZ framed on its box; re-acquisition is the
gallery giving the person's old global id to a new track.

    .venv/bin/python bench/follow.py --live appearance
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from spoton.evaluation.mot import MotBoxes  # noqa: E402
from spoton.follow.follower import Follower, iou_matrix  # noqa: E402
from spoton.follow.loop import FollowLoop  # noqa: E402
from spoton.follow.ptz import PtzGeometry, VirtualPtz  # noqa: E402
from spoton.models.detector import build_detector  # noqa: E402
from spoton.models.embedder import build_embedder  # noqa: E402
from spoton.follow.onvif import OnvifPtz, OnvifPtzConfig  # noqa: E402
from spoton.perception.tracking import Tracker, TrackerConfig  # noqa: E402
from support.ptz_simulator import ManualClock, PtzCameraSimulator, WorldVideo  # noqa: E402
from spoton.follow.controller import FramingController  # noqa: E402
from spoton.follow.phase import PhaseMachine  # noqa: E402
from spoton.live.identity import LIVE_CROP_SIZE, AppearanceSampler, LiveIdentityGallery  # noqa: E402
from spoton.perception.config import PerceptionConfig  # noqa: E402
from spoton.perception.processor import CameraSpec  # noqa: E402
from spoton.video import VideoFrame  # noqa: E402
from spoton.artifacts import cache_dir_from  # noqa: E402

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge

CALIBRATION = REPO_ROOT / "data" / "calibration" / "pets_s2l1_view_001.json"

CENTRAL = 0.30
DEFAULT_GT = "pets/gt_view1_frames0000-0399.txt"


@dataclass
class FollowRun:
    visible: int = 0
    centred: int = 0
    on_target: int = 0
    time_to_lock_s: float | None = None
    reacquisitions: list[tuple[int, bool]] = field(default_factory=list)  # (frame, right person)
    id_switches_healed: list[tuple[int, bool]] = field(default_factory=list)
    swaps_fixed: list[tuple[int, bool]] = field(default_factory=list)
    commands: int = 0
    frames: int = 0
    seconds: float = 0.0

    @property
    def centred_fraction(self) -> float:
        return self.centred / self.visible if self.visible else 0.0


def run_follow(video: Path, gt: MotBoxes, gt_id: int, start: int, frames: int, camera: str = "sim") -> FollowRun:
    world = WorldVideo(video)
    clock = ManualClock()  # seconds of video time, set frame by frame
    sim = None
    if camera == "sim":
        sim = PtzCameraSimulator(video, user="bench", password="bench-pass", clock=clock).start()
        sim.started_at = 0.0
        ptz, geometry = OnvifPtz(OnvifPtzConfig("127.0.0.1", sim.port, "bench", "bench-pass")), sim.geometry
        http = httpx.Client(timeout=10)
    else:
        geometry = PtzGeometry(world.size)
        ptz = VirtualPtz(geometry, clock=clock)
    loop = FollowLoop(ptz, geometry, build_detector(threads=1, cache_dir=CACHE),
                      Tracker(TrackerConfig("bytetrack", frame_rate=world.fps)),
                      build_embedder(cache_dir=CACHE), Follower())
    result, started = FollowRun(), time.perf_counter()
    selected = False
    try:
        for index in range(start, start + frames):
            clock.now = index / world.fps
            position = ptz.status().position
            if sim is not None:
                picture = cv2.imdecode(np.frombuffer(http.get(f"{sim.base}/snapshot.jpg").content, np.uint8), 1)
            else:
                picture = geometry.render(world.frame(index), position)
            reacquired_before, swaps_before = loop.follower.reacquired_by_appearance, loop.follower.swaps_fixed
            phase_before = loop.follower.phase.phase
            step = loop.step(picture, position, clock.now)
            truth = gt.xyxy[(gt.frame == index) & (gt.ids == gt_id)]
            if not selected:
                overlap = iou_matrix(truth, step.xyxy)[0] if len(truth) and len(step.xyxy) else np.zeros(0)
                if len(overlap) and overlap.max() >= 0.5:
                    loop.follower.select(int(step.track_ids[int(np.argmax(overlap))]), clock.now)
                    selected = True
                continue
            result.frames += 1
            right = bool(len(truth) and step.target_row is not None
                         and iou_matrix(truth, step.xyxy[step.target_row])[0, 0] >= 0.3)
            if loop.follower.reacquired_by_appearance > reacquired_before:
                events = result.reacquisitions if phase_before == "LOST" else result.id_switches_healed
                events.append((index, right))
            elif step.phase == "REACQUIRED" and phase_before == "LOST":
                result.reacquisitions.append((index, right))
            if loop.follower.swaps_fixed > swaps_before:
                result.swaps_fixed.append((index, right))
            if len(truth):
                result.visible += 1
                centre = geometry.to_viewport(truth, position)[0]
                centre = ((centre[0] + centre[2]) / 2, (centre[1] + centre[3]) / 2)
                result.centred += all(abs(c - 0.5) <= CENTRAL / 2 for c in centre)
                result.on_target += right
        result.time_to_lock_s = loop.follower.phase.time_to_lock_s
        result.commands = loop.commands_sent
    finally:
        result.seconds = time.perf_counter() - started
        world.close()
        if sim is not None:
            http.close()
            ptz.close()
            sim.stop()
    return result


def run_live_follow(video: Path, gt: MotBoxes, gt_id: int, start: int, frames: int, appearance: bool) -> FollowRun:
    """As a live session follows (apps/live_api/follow.py): see the module docstring."""
    world = WorldVideo(video)
    geometry = PtzGeometry(world.size)
    clock = ManualClock()
    ptz, framing, phase = VirtualPtz(geometry, clock=clock), FramingController(geometry), PhaseMachine()
    perception = PerceptionConfig(threads=1, cache_dir=CACHE)
    processor = perception.build_processor([CameraSpec.from_calibration("view", CALIBRATION)], world.fps)
    sampler = (AppearanceSampler(build_embedder(threads=1, crop_size=LIVE_CROP_SIZE, cache_dir=CACHE))
               if appearance else None)
    gallery = LiveIdentityGallery()
    result, started, target, command, last = FollowRun(), time.perf_counter(), None, (0.0, 0.0, 0.0), None
    try:
        for index in range(start, start + frames):
            clock.now = index / world.fps
            frame = VideoFrame(index=index, ts=clock.now, image=world.frame(index))
            results = processor.process({"view": frame})
            embeddings = sampler.sample(results, {"view": frame.image}) if sampler else None
            ids = gallery.update(results, clock.now, embeddings)["view"]
            tracks = results["view"].tracks
            truth = gt.xyxy[(gt.frame == index) & (gt.ids == gt_id)]
            if target is None:
                overlap = iou_matrix(truth, tracks.xyxy)[0] if len(truth) and len(tracks.xyxy) else np.zeros(0)
                if len(overlap) and overlap.max() >= 0.5:
                    target = int(ids[int(np.argmax(overlap))])
                    phase.select(target, clock.now)
                continue
            result.frames += 1
            before = phase.phase
            rows = np.flatnonzero(ids == target)
            phase.update(len(rows) > 0, clock.now)
            position = ptz.status().position
            right = bool(len(truth) and len(rows) and iou_matrix(truth, tracks.xyxy[rows[:1]])[0, 0] >= 0.3)
            if phase.phase == "REACQUIRED" and before == "LOST":
                result.reacquisitions.append((index, right))
            box = geometry.to_viewport(tracks.xyxy[rows[:1]], position)[0] if len(rows) else None
            velocity = framing.command(box, position, 0.0 if last is None else clock.now - last)
            last = clock.now
            if velocity != command:
                ptz.continuous_move(*velocity)
                result.commands += 1
                command = velocity
            if len(truth):
                result.visible += 1
                centre = geometry.to_viewport(truth, position)[0]
                centre = ((centre[0] + centre[2]) / 2, (centre[1] + centre[3]) / 2)
                result.centred += all(abs(c - 0.5) <= CENTRAL / 2 for c in centre)
                result.on_target += right
            if phase.target_id is None:  # given up
                break
        result.time_to_lock_s = phase.time_to_lock_s
    finally:
        result.seconds = time.perf_counter() - started
        world.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camera", choices=("sim", "virtual"), default="sim")
    parser.add_argument("--gt-id", type=int, default=9)
    parser.add_argument("--start-frame", type=int, default=0)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--live", choices=("position", "appearance"), default=None,
                        help="follow a live global id, as live sessions do (floor position only, or with appearance)")
    parser.add_argument("--gt", type=Path, default=None,
                        help=f"MOTChallenge ground truth (default: $SPOTON_SHARED or ../shared, {DEFAULT_GT})")
    args = parser.parse_args()
    from spoton.artifacts import fetch_sample_video

    gt_path = args.gt or Path(os.environ.get("SPOTON_SHARED", REPO_ROOT.parent / "shared")) / DEFAULT_GT
    if args.live:
        run = run_live_follow(fetch_sample_video(CACHE), MotBoxes.read_mot(gt_path), args.gt_id, args.start_frame,
                              args.frames, args.live == "appearance")
        args.camera = f"virtual, live ids ({args.live})"
    else:
        run = run_follow(fetch_sample_video(CACHE), MotBoxes.read_mot(gt_path), args.gt_id, args.start_frame,
                         args.frames, args.camera)
    print(f"| camera | person | frames | visible | centred (central {CENTRAL:.0%}) | on the right person "
          "| time to lock | PTZ commands | s per frame |")
    print("|---|---|---|---|---|---|---|---|---|")
    lock = "-" if run.time_to_lock_s is None else f"{run.time_to_lock_s:.2f} s"
    print(f"| {args.camera} | {args.gt_id} @ {args.start_frame} | {run.frames} | {run.visible} | "
          f"{run.centred_fraction:.1%} | {run.on_target / max(run.visible, 1):.1%} | {lock} | {run.commands} | "
          f"{run.seconds / max(run.frames, 1):.3f} |")
    name = lambda events: ", ".join(f"{f} ({'right' if ok else 'WRONG'} person)" for f, ok in events) or "none"  # noqa: E731
    print(f"re-acquisitions after LOST (frames): {name(run.reacquisitions)}")
    print(f"tracker id switches healed by appearance (frames): {name(run.id_switches_healed)}")
    print(f"id swaps with a crossing person undone by appearance (frames): {name(run.swaps_fixed)}")


if __name__ == "__main__":
    main()
