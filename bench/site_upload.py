"""Adding a camera from a video (spoton.site.ingest, what site upload jobs and ``spoton env add-camera
--video`` run): an H.264 video cut by stream copy at its keyframes versus the same frames as MJPEG
and VP8, which are decoded and re-encoded to H.264. The inputs are made with ffmpeg from the first
``--seconds`` of the sample video (H.264 with a keyframe every second); one run each into a fresh
site with ``--segment-s`` segments. Prints seconds, the path taken, sub-videos and frames, and
each input's time over the copy path's.

    PYTHONPATH=. .venv/bin/python bench/site_upload.py [--seconds 30] [--segment-s 10]
"""
import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.site.ingest import add_video_camera
from spoton.site.onboarding import create_site
from spoton.storage.store import LocalStore
from spoton.video import _ffmpeg_exe, probe

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge

PLAN = Path(__file__).resolve().parents[1] / "data" / "environments" / "pets_s2l1" / "floor_plan.png"
INPUTS = (("h264.mp4", ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "{fps}"]),
          ("mjpeg.avi", ["-c:v", "mjpeg", "-q:v", "3"]),
          ("vp8.mkv", ["-c:v", "libvpx", "-b:v", "2M"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--segment-s", type=float, default=10.0)
    args = parser.parse_args()
    sample = fetch_sample_video(CACHE)
    fps = probe(sample).fps
    with tempfile.TemporaryDirectory(prefix="bench-site-upload-") as work:
        work = Path(work)
        store = LocalStore(work / "store")
        create_site(store, "bench", PLAN.read_bytes(), 0.05, segment_length_s=args.segment_s)
        rows = []
        for name, codec in INPUTS:
            video = work / name
            subprocess.run([_ffmpeg_exe(), "-v", "error", "-y", "-i", str(sample), "-t", str(args.seconds), "-an",
                            *(c.format(fps=round(fps)) for c in codec), str(video)], check=True)
            started = time.perf_counter()
            added = add_video_camera(store, "bench", name.split(".")[0], video)
            rows.append((name, probe(video).codec, added, time.perf_counter() - started))
    copy_s = next((s for _, _, added, s in rows if added.path == "copy"), None)
    print(f"\nAdd a camera from {args.seconds:g} s of the sample video ({fps:g} fps, 768x576), "
          f"{args.segment_s:g} s segments, {os.cpu_count()} cores, one run each\n")
    print("| input | codec | path | seconds | sub-videos | frames | / copy |")
    print("|---|---|---|---|---|---|---|")
    for name, codec, added, seconds in rows:
        ratio = f"{seconds / copy_s:.1f}x" if copy_s else "-"
        print(f"| {name} | {codec} | {added.path} | {seconds:.2f} | {len(added.keys)} | "
              f"{sum(added.frame_counts)} | {ratio} |")


if __name__ == "__main__":
    main()
