"""Glass-to-glass in headless Chromium: a frame's capture -> its own boxes drawn over it on the page.

Starts the real API (uvicorn subprocess, WebRTC on loopback) over a short build of the sample
environment and opens the overlay page, once per source kind:

- **file camera**: a copy of a sample sub-video with its frame number drawn into every picture
  (16 black/white blocks along the top). Capture is the moment the file source released the frame
  (its media timestamp: ``created_unix_ms + media_ts / 90``); the number read back from the pixels
  of the frame the boxes were drawn on must equal the drawn tick's ``frame_index`` (counted as
  "stamp = tick").
- **webcam (WHIP)**: the page's ``getUserMedia`` gives a canvas stream that draws sample frames
  with the wall-clock time (24 bits of milliseconds) in the same kind of blocks; capture is that
  time, read back from the pixels of the frame coming back over WHEP: true glass to glass,
  browser -> server -> analytics -> browser, all on the page's clock.

The page's own ``draw(view, tick)`` is wrapped: when a tick is drawn on the very frame it
describes (its ``media_ts`` is the frame's), the wrapper reads that frame's stamp and notes the
time: at once when the tick came first (in the frame's requestVideoFrameCallback), or when the tick
arrives while its frame is on screen. "drawn" is that moment, "shown" the browser's expected
display time of the frame (when the tick came first).

    PYTHONPATH=. .venv/bin/python bench/glass_to_glass.py --seconds 20
    PYTHONPATH=. .venv/bin/python bench/glass_to_glass.py --seconds 20 --precision int8   # NanoDet INT8
    PYTHONPATH=. .venv/bin/python bench/glass_to_glass.py --seconds 15 --jitter-ms 0 --stages

``--stages`` runs the API under ``bench/stage_probe.py`` and adds, per source, where a processed
frame's time went on the server (RTP packets, jitter buffer, decode, slot, process(), tick, WHEP
encode: wall p50/p95 and CPU) from the probe's records inside each phase's measuring window.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.live_latency import KEY, running_api, sample_store  # noqa: E402
from bench.webrtc_overlay import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

ENV = "pets_s2l1"
STAMP_BAND = 24  # px at the top of the picture holding the stamp blocks
FILE_BITS, WEBCAM_BITS = 16, 24
HEADERS = {"Authorization": f"Bearer {KEY}"}

# Decodes the stamp of what a <video> shows now; wraps the page's draw() to time boxes drawn on their frame.
PROBE_JS = """
(() => {
  const probe = window.glass = { samples: [], seen: new Set(), last: {} };
  const scratch = document.createElement("canvas");
  const ctx = scratch.getContext("2d", { willReadFrequently: true });
  function stamp(video, bits) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    scratch.width = w; scratch.height = Math.ceil(h * BAND / 480);
    ctx.drawImage(video, 0, 0, w, h, 0, 0, w, h);
    const row = ctx.getImageData(0, 0, w, scratch.height);
    const y = Math.floor(scratch.height / 2);
    let value = 0;
    for (let bit = 0; bit < bits; bit++) {
      const x = Math.floor((bit + 0.5) * w / bits);
      const i = (y * w + x) * 4;
      const luma = 0.299 * row.data[i] + 0.587 * row.data[i + 1] + 0.114 * row.data[i + 2];
      if (luma > 128) value += 2 ** bit;
    }
    return value;
  }
  const pageDraw = window.draw;
  window.draw = function (view, tick) {
    const result = pageDraw(view, tick);
    const media = tick ? tick.media_ts % 2 ** 32 : null;
    if (tick && view.video && media === view.frameMedia && !probe.seen.has(view.name + ":" + media)) {
      probe.seen.add(view.name + ":" + media);
      const bits = view.source && view.source.kind === "webrtc" ? WEBCAM_BITS : FILE_BITS;
      const sample = { camera: view.name, media, frameIndex: tick.frame_index,
                       drawnMs: performance.timeOrigin + performance.now(), shownMs: null,
                       stamp: stamp(view.video, bits),
                       created: window.spoton.lastStatus && window.spoton.lastStatus.created_unix_ms };
      probe.samples.push(sample);
      probe.last[view.name] = sample;
    }
    return result;
  };
  // the expected display time of a frame drawn in the page's own callback (which runs before this one)
  setInterval(() => {
    for (const view of Object.values(window.spoton.cameras)) {
      const video = view.video;
      if (!video || video.glassWatched || !video.requestVideoFrameCallback) continue;
      video.glassWatched = true;
      const step = (_, metadata) => {
        const sample = probe.last[view.name];
        if (sample && sample.media === view.frameMedia && sample.shownMs === null) {
          sample.shownMs = performance.timeOrigin + metadata.expectedDisplayTime;
        }
        video.requestVideoFrameCallback(step);
      };
      video.requestVideoFrameCallback(step);
    }
  }, 100);
})();
"""

# getUserMedia -> a canvas stream: sample frames under a stamp of the wall-clock time (24 bits of ms).
FAKE_WEBCAM_JS = """
(([frames, fps]) => {
  const canvas = document.createElement("canvas");
  canvas.width = 640; canvas.height = 480;
  const ctx = canvas.getContext("2d");
  const images = frames.map((src) => { const image = new Image(); image.src = src; return image; });
  let index = 0, last = 0;
  function paint() {
    const now = Date.now();
    if (now - last >= 1000 / fps) { index = (index + 1) % images.length; last = now; }
    if (images[index].complete) ctx.drawImage(images[index], 0, 0, 640, 480);
    const stamp = now % 2 ** BITS;
    for (let bit = 0; bit < BITS; bit++) {
      ctx.fillStyle = Math.floor(stamp / 2 ** bit) % 2 ? "#fff" : "#000";
      ctx.fillRect(bit * 640 / BITS, 0, 640 / BITS + 1, BAND);
    }
  }
  setInterval(paint, 1000 / 30);
  navigator.mediaDevices.getUserMedia = async () => canvas.captureStream(30);
})
"""


def stamped_clip(source: Path, target: Path) -> int:
    """``source`` re-encoded with each frame's number in 16 blocks along the top; its frame count."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 7.0
    writer, count = None, 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        height, width = image.shape[:2]
        if writer is None:
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        band = round(STAMP_BAND * height / 480)
        for bit in range(FILE_BITS):
            x0, x1 = bit * width // FILE_BITS, (bit + 1) * width // FILE_BITS
            image[:band, x0:x1] = 255 if (count >> bit) & 1 else 0
        writer.write(image)
        count += 1
    capture.release()
    writer.release()
    return count


def sample_frames_as_data_urls(source: Path, count: int) -> list[str]:
    capture = cv2.VideoCapture(str(source))
    urls = []
    while len(urls) < count:
        ok, image = capture.read()
        if not ok:
            break
        ok, jpeg = cv2.imencode(".jpg", cv2.resize(image, (640, 480)), [cv2.IMWRITE_JPEG_QUALITY, 80])
        urls.append("data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode())
    capture.release()
    return urls


def api_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(browser, base: str, kind: str, cameras: dict, seconds: float, tick_rate: float,
              webcam_frames: list[str] | None, clip_frames: int, jitter_ms: int, api_pid: int) -> dict:
    body = {"environment": ENV, "tick_rate_hz": tick_rate, "cameras": cameras}
    created = httpx.post(f"{base}/api/v1/sessions", json=body, headers=HEADERS, timeout=60).json()
    session_id = created["session_id"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        if webcam_frames is not None:
            webcam = FAKE_WEBCAM_JS.replace("BITS", str(WEBCAM_BITS)).replace("BAND", str(STAMP_BAND))
            page.add_init_script(script=f"({webcam})({[webcam_frames, 7]!r})")
        page.goto(f"{base}/?token={KEY}&jitter_ms={jitter_ms}")
        page.wait_for_function("document.querySelectorAll('#sessions option').length > 1", timeout=30_000)
        page.evaluate(PROBE_JS.replace("WEBCAM_BITS", str(WEBCAM_BITS)).replace("FILE_BITS", str(FILE_BITS))
                      .replace("BAND", str(STAMP_BAND)))
        page.select_option("#sessions", session_id)
        if webcam_frames is not None:
            camera = next(iter(cameras))
            page.click(f"figure[data-camera='{camera}'] button.publish", timeout=30_000)
        page.wait_for_function("window.glass.samples.length > 0", timeout=90_000)
        page.evaluate("window.glass.samples = []")  # warm-up done: count from here
        window, cpu = [time.monotonic()], [api_cpu_s(api_pid)]
        time.sleep(seconds)
        samples = page.evaluate("window.glass.samples")
        window.append(time.monotonic())
        cpu.append(api_cpu_s(api_pid))
        server = httpx.get(f"{base}/api/v1/sessions/{session_id}", headers=HEADERS, timeout=30).json()["latency_ms"]
    finally:
        context.close()
        httpx.delete(f"{base}/api/v1/sessions/{session_id}", headers=HEADERS, timeout=30)
    drawn, shown, agree = [], [], 0
    for sample in samples:
        if sample["stamp"] is None:
            continue
        if kind == "webcam":
            age = lambda at: (int(at) % 2 ** WEBCAM_BITS - sample["stamp"]) % 2 ** WEBCAM_BITS  # noqa: E731
            captured = sample["drawnMs"] - age(sample["drawnMs"])
            agree += age(sample["drawnMs"]) < 10_000  # a stamp read back whole
        else:
            captured = sample["created"] + sample["media"] / 90
            agree += sample["stamp"] == sample["frameIndex"] % clip_frames
        drawn.append(sample["drawnMs"] - captured)
        shown.append(max(sample["shownMs"] or sample["drawnMs"], sample["drawnMs"]) - captured)

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    return {"kind": kind, "jitter_ms": jitter_ms, "frames": len(samples), "agree": agree / max(len(samples), 1),
            "drawn50": pct(drawn, 50), "drawn95": pct(drawn, 95), "shown50": pct(shown, 50),
            "shown95": pct(shown, 95), "ft95": server["p95"], "session_id": session_id, "window": window,
            "api_cpu_s": cpu[1] - cpu[0]}


def stage_rows(records: dict, row: dict) -> dict:
    """Per-stage wall times (p50/p95 ms) and CPU (ms a frame) of one phase's processed frames, from
    ``bench/stage_probe.py``'s records within the phase's measuring window (see its docstring)."""
    start, end = row["window"]
    inside = lambda t: start <= t <= end  # noqa: E731
    session = row["session_id"]
    published = [r for r in records["publish"] if r["session"] == session and inside(r["t"])]
    taken = [r for r in records["taken"] if r["session"] == session and inside(r["t"])]

    def last_before(items: list[dict], index: int, t: float) -> dict | None:
        """The newest record of frame ``index`` at or before ``t`` (a looping file repeats indices)."""
        found = [r for r in items if r["index"] == index and r["t"] <= t]
        return found[-1] if found else None

    processed = {}  # media_ts -> (publish record, taken record, process record)
    for record in records["process"]:
        if record["session"] == session and inside(record["t0"]):
            for index, media in record["frames"].values():
                took = last_before(taken, index, record["t0"])
                pub = None if took is None else last_before(published, index, took["t"])
                if pub is not None:
                    processed[media] = (pub, took, record)
    ticks = {}
    for record in records["tick"]:
        if record["session"] == session and inside(record["t"]):
            for media in record["media"].values():
                ticks.setdefault(media, record["t"])
    encodes = {}
    for record in records["encode"]:
        if inside(record["t0"]):
            encodes.setdefault(record["pts"], record)
    decodes = {r["ts"]: r for r in records["decode"] if inside(r["t0"])}
    raw_of = {r["mapped"]: r["raw"] for r in records["tsmap"] if inside(r["t"])}
    first_packet, last_packet = {}, {}
    for record in records["rtp"]:
        if inside(record["t"]):
            first_packet.setdefault(record["ts"], record["t"])
            if record["marker"]:
                last_packet[record["ts"]] = record["t"]
    stages: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def add(name: str, value: float | None, cpu_s: float | None = None) -> None:
        if value is not None:
            stages.setdefault(name, []).append(value * 1000)
        if cpu_s is not None:
            cpu.setdefault(name, []).append(cpu_s * 1000)

    for media, (pub, took, process) in processed.items():
        if "rtp" in pub:  # WHIP: RTP -> decoded -> event loop -> slot
            decode, raw = decodes.get(pub["rtp"]), raw_of.get(pub["rtp"])
            first, last = first_packet.get(raw), last_packet.get(raw)
            add("RTP first -> last packet", None if first is None or last is None else last - first)
            add("last packet -> decode start", None if last is None or decode is None else decode["t0"] - last)
            add("decode", None if decode is None else decode["t1"] - decode["t0"], decode and decode["cpu"])
            add("decoded -> event loop", None if decode is None else pub["t_recv"] - decode["t1"])
            add("to BGR + publish", pub["t"] - pub["t_recv"], pub["convert_cpu"])
        else:
            add("read (file decode)", None, pub.get("read_cpu"))
        add("slot wait (published -> taken)", took["t"] - pub["t"])
        add("process()", process["t1"] - process["t0"], process["cpu"] / len(process["frames"]))
        add("processed -> its tick", ticks[media] - process["t1"] if media in ticks else None)
        add("published -> its tick (f->t)", ticks[media] - pub["t"] if media in ticks else None)
        encode = encodes.get(media)
        add("processed -> encode start", None if encode is None else encode["t0"] - process["t1"])
        add("WHEP encode", None if encode is None else encode["t1"] - encode["t0"], encode and encode["cpu"])
    seconds = end - start
    all_cpu = {  # every frame's, processed or not: CPU a second
        "decode": sum(r["cpu"] for r in decodes.values()),
        "to BGR + publish": sum(r.get("convert_cpu") or 0 for r in published),
        "read (file decode)": sum(r.get("read_cpu") or 0 for r in published),
        "WHEP encode": sum(r["cpu"] for r in encodes.values()),
        "process()": sum(r["cpu"] for r in {id(p): p for *_, p in processed.values()}.values()),
    }
    return {"kind": row["kind"], "stages": stages, "cpu": cpu, "seconds": seconds,
            "published": len(published), "processed": len(processed),
            "with_tick": sum(media in ticks for media in processed),
            "sizes": sorted({tuple(r["size"]) for r in published}),
            "cpu_per_s": {k: v / seconds * 1000 for k, v in all_cpu.items()},
            "api_cpu_per_s": row["api_cpu_s"] / seconds * 1000}


def print_stages(tables: list[dict]) -> None:
    names = []
    for table in tables:
        for name in list(table["stages"]) + list(table["cpu"]):
            if name not in names:
                names.append(name)
    print("\nwhere a processed frame's time goes (bench/stage_probe.py; wall p50 / p95 ms, CPU ms a frame: "
          "mean; compare CPU and ratios on a loaded machine)\n")
    header = f"{'stage':>32}" + "".join(f" {t['kind'] + ' wall p50/p95':>22} {'CPU':>6}" for t in tables)
    print(header)
    print("-" * len(header))
    for name in names:
        line = f"{name:>32}"
        for table in tables:
            wall, cpu = table["stages"].get(name), table["cpu"].get(name)
            shown = f"{np.percentile(wall, 50):.1f} / {np.percentile(wall, 95):.1f}" if wall else "-"
            line += f" {shown:>22} {np.mean(cpu) if cpu else float('nan'):>6.1f}"
        print(line)
    print()
    for table in tables:
        per_s = ", ".join(f"{k} {v:.0f}" for k, v in table["cpu_per_s"].items() if v)
        print(f"{table['kind']}: frames {table['sizes']}, published {table['published'] / table['seconds']:.1f}/s, "
              f"processed {table['processed'] / table['seconds']:.1f}/s, with their own tick "
              f"{table['with_tick'] / max(table['processed'], 1):.0%}; CPU ms a second: {per_s}; "
              f"the whole API {table['api_cpu_per_s']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--tick-rate", type=float, default=15.0)
    parser.add_argument("--source-frames", type=int, default=96, help="sample environment length")
    parser.add_argument("--kinds", nargs="+", default=["file", "webcam"], choices=["file", "webcam"])
    parser.add_argument("--jitter-ms", type=int, nargs="+", default=[100],
                        help="the page's receiver hold (its ?jitter_ms=, default 100): frames wait that long for "
                             "their ticks; give several to compare")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                        help="the API's detector (SPOTON_DETECTOR_PRECISION)")
    parser.add_argument("--stages", action="store_true",
                        help="run the API under bench/stage_probe.py and print where each frame's time goes")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with sample_store(args.source_frames, "spoton-glass-bench-") as store:
        sub_video = store / ENV / "cam1" / "sub_video_01.mp4"
        clip = store / "glass" / "stamped.mp4"
        clip.parent.mkdir()
        clip_frames = stamped_clip(sub_video, clip)
        webcam_frames = sample_frames_as_data_urls(store / ENV / "cam3" / "sub_video_01.mp4", 24)
        env = {"SPOTON_WEBRTC_ICE_HOSTS": "127.0.0.1", "SPOTON_MAX_TICK_RATE": "30",
               "SPOTON_DETECTOR_PRECISION": args.precision}
        probe = store / "glass" / "stages.json"
        if args.stages:
            env["SPOTON_STAGE_PROBE"] = str(probe)
        module = "bench.stage_probe" if args.stages else "apps.live_api"
        with running_api(store, 1, env, module) as (api, port), sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
            base = f"http://127.0.0.1:{port}"
            phases = {"file": ({"cam1": {"kind": "file", "uri": str(clip)}}, None),
                      "webcam": ({"cam3": {"kind": "webrtc", "uri": "browser"}}, webcam_frames)}
            for kind in args.kinds:
                for jitter_ms in args.jitter_ms:
                    cameras, frames = phases[kind]
                    rows.append(run_phase(browser, base, kind, cameras, args.seconds, args.tick_rate, frames,
                                          clip_frames, jitter_ms, api.pid))
            browser.close()
        records = json.loads(probe.read_text()) if args.stages else None  # written as the API exited

    print(f"\nglass to glass in headless Chromium, sample environment, one camera per session, tick rate "
          f"{args.tick_rate:g}/s, {args.seconds:g} s per phase, {os.cpu_count()} CPUs, detector {args.precision}, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    header = (f"{'source':>8} {'hold ms':>8} {'frames':>7} {'stamp ok':>9} {'drawn p50 ms':>13} "
              f"{'drawn p95 ms':>13} {'shown p50 ms':>13} {'shown p95 ms':>13} {'server f->t p95':>16}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['kind']:>8} {row['jitter_ms']:>8} {row['frames']:>7} {row['agree']:>9.0%} "
              f"{row['drawn50']:>13.1f} {row['drawn95']:>13.1f} {row['shown50']:>13.1f} {row['shown95']:>13.1f} "
              f"{row['ft95']:>16}")
    print("\nhold: the page's receiver hold (jitterBufferTarget); frames: frames whose own tick was drawn on them;\n"
          "stamp ok: file: the number in the picture = the drawn tick's frame_index, webcam: a time stamp read back\n"
          "whole; drawn: capture -> boxes drawn on that frame; shown: -> the frame's expected display time (or the\n"
          "draw, if later); the bar is p95 < 200 ms")
    if records is not None:
        print_stages([stage_rows(records, row) for row in rows])


if __name__ == "__main__":
    main()
