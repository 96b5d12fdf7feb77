"""WebRTC overlay in headless Chromium: frame-exact drawing and source -> screen latency.

Starts the real API (uvicorn subprocess, WebRTC on loopback) over a short build of the sample
environment; for each receiver hold (the page's ``?jitter_ms=``) and camera count, creates a
session (store cameras, tick rate ``--tick-rate``), opens the overlay page on it for
``--seconds`` and reads ``window.spotonStats``: frames drawn, the share drawn with their own tick,
the largest mismatch in frames, and source -> screen latency (frame available at its source ->
the browser's expected display time of that frame, boxes drawn in the same callback) p50/p95.

    .venv/bin/python bench/webrtc_overlay.py --seconds 20
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.live_latency import KEY, sample_api  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]


def run_phase(browser, base: str, cameras: list[str], jitter_ms: int, seconds: float, tick_rate: float) -> dict:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"environment": "pets_s2l1", "tick_rate_hz": tick_rate,
            "cameras": {cam: {"kind": "store", "uri": f"pets_s2l1/{cam}/sub_video_01.mp4"} for cam in cameras}}
    created = httpx.post(f"{base}/api/v1/sessions", json=body, headers=headers, timeout=60).json()
    session_id = created["session_id"]
    page = browser.new_page()
    try:
        page.goto(f"{base}/?token={KEY}&jitter_ms={jitter_ms}")
        page.wait_for_function("document.querySelectorAll('#sessions option').length > 1", timeout=30_000)
        page.select_option("#sessions", session_id)
        page.wait_for_function("Object.values(window.spotonStats.cameras).some(c => c.framesDrawn > 0)",
                               timeout=60_000)
        time.sleep(seconds)
        stats = page.evaluate("window.spotonStats.cameras")
        server = httpx.get(f"{base}/api/v1/sessions/{session_id}", headers=headers, timeout=30).json()["latency_ms"]
    finally:
        page.close()
        httpx.delete(f"{base}/api/v1/sessions/{session_id}", headers=headers, timeout=30)
    drawn = sum(c["framesDrawn"] for c in stats.values())
    latencies = np.concatenate([c["sourceToDisplayMs"] for c in stats.values()] or [[]])
    return {"cameras": len(cameras), "jitter_ms": jitter_ms, "frames": drawn,
            "exact": sum(c["exact"] for c in stats.values()) / max(drawn, 1),
            "max_mismatch": max(c["maxMismatchFrames"] for c in stats.values()),
            "p50": float(np.percentile(latencies, 50)) if len(latencies) else float("nan"),
            "p95": float(np.percentile(latencies, 95)) if len(latencies) else float("nan"),
            "ft50": server["p50"], "ft95": server["p95"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--tick-rate", type=float, default=15.0)
    parser.add_argument("--jitter-ms", type=int, nargs="+", default=[100, 0],
                        help="receiver holds to compare (0: the browser's own)")
    parser.add_argument("--source-frames", type=int, default=96, help="sample environment length")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    os.environ["SPOTON_WEBRTC_ICE_HOSTS"] = "127.0.0.1"  # the API process inherits it
    rows = []
    with sample_api(args.source_frames, 1, "spoton-webrtc-bench-") as (_, port):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for jitter_ms in args.jitter_ms:
                for cameras in (["cam1"], ["cam1", "cam2", "cam3"]):
                    rows.append(run_phase(browser, f"http://127.0.0.1:{port}", cameras, jitter_ms,
                                          args.seconds, args.tick_rate))
            browser.close()
    print(f"\nWebRTC overlay in headless Chromium, sample environment (10 fps sources), tick rate "
          f"{args.tick_rate:g}/s, {args.seconds:g} s per row")
    header = (f"{'cameras':>7} {'hold ms':>7} {'frames':>6} {'own tick':>8} {'max mismatch':>12} "
              f"{'src->screen p50 ms':>18} {'p95 ms':>7} {'f->t p50 ms':>11} {'p95 ms':>7}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['cameras']:>7} {row['jitter_ms']:>7} {row['frames']:>6} {row['exact']:>8.0%} "
              f"{row['max_mismatch']:>12} {row['p50']:>18.0f} {row['p95']:>7.0f} {row['ft50']:>11.0f} "
              f"{row['ft95']:>7.0f}")
    print("own tick: frames drawn with the tick of that very frame; mismatch in frames; src->screen: frame "
          "available at its source -> expected display time (processing, encoding, network, receiver hold); "
          "f->t: the session's frame -> tick latency (server side, last 300 frames)")


if __name__ == "__main__":
    main()
