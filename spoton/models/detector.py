"""Person detectors behind one interface: ``detect(frame) -> Detections``.

Default: NanoDet-m (COCO, 416x416), converted from its npm-shipped TF.js graph
by the project's own converter. Alternative: any Ultralytics YOLO ONNX export
(v8/v11 layout ``(1, 4 + classes, anchors)``). Both run on ONNX Runtime.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort

from spoton.artifacts import DEFAULT_CACHE_DIR, cached_file, fetch_nanodet_graph, fetch_sample_video
from spoton.errors import MissingWeightsError
from spoton.models.base import Detector
from spoton.models.quantize import QUANTIZER_VERSION, quantize_static_int8
from spoton.models.tfjs_onnx import CONVERTER_VERSION, convert_tfjs_graph
from spoton.records import PERSON_CLASS_ID, Detections
from spoton.video import iter_frames

ResizeMode = Literal["stretch", "letterbox"]
Precision = Literal["fp32", "int8"]
PRECISIONS = ("fp32", "int8")
# INT8 calibration: every 12th frame of the sample video's first 768 (64 frames, the whole walk-through)
CALIBRATION_STOP, CALIBRATION_STEP = 768, 12

NANODET_MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
NANODET_STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
NANODET_INV_STD_BGR = 1.0 / NANODET_STD_BGR
NANODET_STRIDES = (8, 16, 32)
NANODET_REG_BINS = 11  # distance distribution bins per box side (GFL head, reg_max=10)


@dataclass(frozen=True)
class DetectorConfig:
    """Post-processing shared by the detectors.

    The defaults are chosen on the sample video (see docs/detector.md).
    """

    score_threshold: float = 0.2
    nms_iou: float = 0.6
    resize: ResizeMode = "stretch"
    person_only: bool = True
    min_box_height_px: float = 8.0


def nanodet_onnx_path(cache_dir: Path = DEFAULT_CACHE_DIR, precision: Precision = "fp32") -> Path:
    """NanoDet-m as ONNX in ``cache_dir``, converted once from its npm TF.js graph by the project's own converter.

    ``precision="int8"``: its INT8 copy (:mod:`spoton.models.quantize`), made once, calibrated on frames
    of the sample video preprocessed as :meth:`NanoDetDetector.detect` does (~1.6x less CPU per frame
    on AVX2, slightly different boxes: docs/benchmarks.md).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"detector precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    fp32 = cached_file(cache_dir, f"models/nanodet-m-416.v{CONVERTER_VERSION}.onnx",
                       lambda path: convert_tfjs_graph(fetch_nanodet_graph(cache_dir)[0], path))
    if precision == "fp32":
        return fp32

    def quantize(path: Path) -> None:
        detector = NanoDetDetector(fp32, cache_dir=cache_dir)
        frames = islice(iter_frames(fetch_sample_video(cache_dir), stop=CALIBRATION_STOP), 0, None, CALIBRATION_STEP)
        quantize_static_int8(fp32, path, detector.input_name, (detector.preprocess(f.image)[0] for f in frames))

    return cached_file(cache_dir, f"models/nanodet-m-416.v{CONVERTER_VERSION}.int8-q{QUANTIZER_VERSION}.onnx",
                       quantize)


def make_session(model_path: Path, threads: int | None = None, device: str = "cpu") -> ort.InferenceSession:
    """An ONNX Runtime session: CUDA when ``device`` is ``"cuda"`` and available, else CPU.

    ``threads`` bounds intra-op threads so that two partitions in parallel share the machine's
    cores instead of fighting (None or 0: ONNX Runtime's default, every core).
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise MissingWeightsError(
            f"detector model {model_path} does not exist: run `make models` (or `spoton fetch`) "
            "for the default NanoDet, or pass --detector-model PATH to an ONNX file")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(model_path), options, providers=providers)


def resize_for_model(frame: np.ndarray, size: tuple[int, int], mode: ResizeMode,
                     pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize to the model's (w, h); return the image, per-axis scale and offset back to the frame.

    A model-space point p maps to the frame as ``p * scale + offset``.
    """
    height, width = frame.shape[:2]
    model_w, model_h = size
    if mode == "stretch":
        resized = cv2.resize(frame, (model_w, model_h), interpolation=cv2.INTER_LINEAR)
        return resized, np.array([width / model_w, height / model_h]), np.zeros(2)
    ratio = min(model_w / width, model_h / height)
    new_w, new_h = round(width * ratio), round(height * ratio)
    canvas = np.full((model_h, model_w, 3), pad_value, dtype=frame.dtype)
    left, top = (model_w - new_w) // 2, (model_h - new_h) // 2
    canvas[top:top + new_h, left:left + new_w] = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, np.array([1 / ratio, 1 / ratio]), np.array([-left / ratio, -top / ratio])


def postprocess(boxes_model: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                scale: np.ndarray, offset: np.ndarray, frame_shape: tuple[int, ...],
                config: DetectorConfig) -> Detections:
    """Threshold, class filter, NMS (per class) and mapping back to frame pixels."""
    keep = scores >= config.score_threshold
    if config.person_only:
        keep &= class_ids == PERSON_CLASS_ID
    boxes_model, scores, class_ids = boxes_model[keep], scores[keep], class_ids[keep]
    if len(scores) == 0:
        return Detections.empty()
    xyxy = boxes_model.reshape(-1, 2, 2) * scale + offset
    height, width = frame_shape[:2]
    xyxy[..., 0] = xyxy[..., 0].clip(0, width)
    xyxy[..., 1] = xyxy[..., 1].clip(0, height)
    xyxy = xyxy.reshape(-1, 4)
    tall_enough = (xyxy[:, 3] - xyxy[:, 1]) >= config.min_box_height_px
    xyxy, scores, class_ids = xyxy[tall_enough], scores[tall_enough], class_ids[tall_enough]
    xywh = np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])
    # offsetting boxes by class id makes one NMS call act per class
    shifted = xywh + (class_ids[:, None] * 10_000.0) * np.array([1, 1, 0, 0])
    kept = cv2.dnn.NMSBoxes(shifted.tolist(), scores.tolist(), config.score_threshold, config.nms_iou)
    kept = np.asarray(kept, dtype=np.int64).reshape(-1)
    kept = kept[np.argsort(-scores[kept], kind="stable")]
    return Detections(xyxy[kept], scores[kept], class_ids[kept])


class NanoDetDetector:
    """NanoDet-m (GFL head): per-stride class scores and side-distance distributions.

    Without ``model_path`` the converted NanoDet-m in ``cache_dir`` (made there on first use), in
    ``precision``."""

    def __init__(self, model_path: Path | None = None, config: DetectorConfig = DetectorConfig(),
                 threads: int | None = None, device: str = "cpu", *, cache_dir: Path = DEFAULT_CACHE_DIR,
                 precision: Precision = "fp32"):
        if model_path is None:
            model_path = nanodet_onnx_path(cache_dir, precision)
        elif precision != "fp32":
            raise ValueError(f"precision {precision!r} applies to the default NanoDet: quantize your own "
                             f"--detector-model {model_path} yourself, or leave the precision at fp32")
        self.session = make_session(model_path, threads, device)
        self.config = config
        shape = self.session.get_inputs()[0].shape  # (1, 3, H, W)
        self.input_size = (int(shape[3]), int(shape[2]))
        self.input_name = self.session.get_inputs()[0].name
        self._anchors = self._anchor_grid()
        # outputs sorted into (scores, distributions) per stride, small stride first
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        by_cells = sorted(outputs, key=lambda n: (-int(outputs[n][1]), int(outputs[n][2])))
        self.output_names = by_cells

    def _anchor_grid(self) -> list[tuple[np.ndarray, int]]:
        grids = []
        width, height = self.input_size
        for stride in NANODET_STRIDES:
            ys, xs = np.mgrid[0:height // stride, 0:width // stride]
            centres = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float32)
            grids.append(((centres + 0.5) * stride, stride))
        return grids

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, scale, offset = resize_for_model(frame, self.input_size, self.config.resize,
                                                pad_value=0)
        # normalised channel by channel straight into the NCHW tensor: ~3x faster than
        # converting, normalising and transposing the whole HWC image
        width, height = self.input_size
        tensor = np.empty((1, 3, height, width), dtype=np.float32)
        for channel in range(3):
            np.subtract(image[:, :, channel], NANODET_MEAN_BGR[channel], out=tensor[0, channel],
                        dtype=np.float32, casting="unsafe")
            tensor[0, channel] *= NANODET_INV_STD_BGR[channel]
        return tensor, scale, offset

    def decode(self, outputs: list[np.ndarray], min_score: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs -> boxes in model pixels (x1, y1, x2, y2), score and class per cell.

        The score is the person score when ``config.person_only`` (not only where person is the
        argmax), else the best class's. Only cells scoring >= ``min_score`` are decoded: the
        side-distance softmax of every cell costs more than the rest of post-processing.
        """
        named = dict(zip(self.output_names, outputs))
        boxes, scores, classes = [], [], []
        for centres, stride in self._anchors:
            cells = len(centres)
            level = [named[n] for n in self.output_names if int(named[n].shape[1]) == cells]
            cls_scores = next(o for o in level if o.shape[2] != 4 * NANODET_REG_BINS)[0]
            distribution = next(o for o in level if o.shape[2] == 4 * NANODET_REG_BINS)[0]
            if self.config.person_only:
                score, label = cls_scores[:, PERSON_CLASS_ID], np.full(cells, PERSON_CLASS_ID)
            else:
                score, label = cls_scores.max(axis=1), cls_scores.argmax(axis=1)
            kept = np.flatnonzero(score >= min_score)
            logits = distribution[kept].reshape(len(kept), 4, NANODET_REG_BINS)
            logits = np.exp(logits - logits.max(axis=2, keepdims=True))
            probs = logits / logits.sum(axis=2, keepdims=True)
            distances = (probs * np.arange(NANODET_REG_BINS, dtype=np.float32)).sum(axis=2) * stride
            boxes.append(np.column_stack([centres[kept] - distances[:, :2], centres[kept] + distances[:, 2:]]))
            scores.append(score[kept])
            classes.append(label[kept])
        return np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)

    def detect(self, frame: np.ndarray) -> Detections:
        tensor, scale, offset = self.preprocess(frame)
        outputs = self.session.run(self.output_names, {self.input_name: tensor})
        boxes, scores, classes = self.decode(outputs, min_score=self.config.score_threshold)
        return postprocess(boxes, scores, classes, scale, offset, frame.shape, self.config)


class YoloDetector:
    """Ultralytics YOLOv8/v11 ONNX export: output (1, 4 + classes, anchors), cx cy w h in input pixels."""

    def __init__(self, model_path: Path, config: DetectorConfig = DetectorConfig(resize="letterbox"),
                 threads: int | None = None, device: str = "cpu"):
        self.session = make_session(model_path, threads, device)
        self.config = config
        inp = self.session.get_inputs()[0]
        height, width = (int(d) if isinstance(d, int) else 640 for d in inp.shape[2:4])
        self.input_size = (width, height)
        self.input_name = inp.name

    def detect(self, frame: np.ndarray) -> Detections:
        image, scale, offset = resize_for_model(frame, self.input_size, self.config.resize, pad_value=114)
        tensor = image[..., ::-1].astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        (output,) = self.session.run(None, {self.input_name: np.ascontiguousarray(tensor)})[:1]
        predictions = output[0].T  # (anchors, 4 + classes)
        cxcywh, class_scores = predictions[:, :4], predictions[:, 4:]
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(len(class_ids)), class_ids]
        if self.config.person_only:
            scores, class_ids = class_scores[:, PERSON_CLASS_ID], np.zeros_like(class_ids)
        half = cxcywh[:, 2:] / 2
        boxes = np.column_stack([cxcywh[:, :2] - half, cxcywh[:, :2] + half])
        return postprocess(boxes, scores, class_ids, scale, offset, frame.shape, self.config)


def build_detector(name: str = "nanodet", model_path: Path | None = None,
                   config: DetectorConfig | None = None, threads: int | None = None, device: str = "cpu", *,
                   cache_dir: Path = DEFAULT_CACHE_DIR, precision: Precision = "fp32") -> Detector:
    """Detector by name: ``nanodet`` (default, fetched into ``cache_dir``; ``precision`` fp32 or int8) or
    ``yolo`` (an Ultralytics ONNX at ``model_path``)."""
    if name == "nanodet":
        return NanoDetDetector(model_path, config or DetectorConfig(), threads, device, cache_dir=cache_dir,
                               precision=precision)
    if precision != "fp32":
        raise ValueError(f"precision {precision!r} applies to the default NanoDet only, not to {name!r}")
    if name == "yolo":
        if model_path is None:
            raise MissingWeightsError(
                "the yolo detector needs --detector-model PATH to an Ultralytics ONNX export "
                "(e.g. `yolo export model=yolov8n.pt format=onnx` on a machine with internet)")
        return YoloDetector(model_path, config or DetectorConfig(resize="letterbox"), threads, device)
    raise ValueError(f"unknown detector {name!r}: choose 'nanodet' or 'yolo'")
