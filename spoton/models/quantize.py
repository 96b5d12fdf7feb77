"""INT8 copies of an ONNX detector (ONNX Runtime static quantization), for cheaper CPU frames.

Activations unsigned, weights signed and per channel (U8S8), as QOperator nodes (QLinearConv),
weights on 7 bits (``reduce_range``): on x86 CPUs without VNNI, ONNX Runtime's U8S8 kernels multiply
with VPMADDUBSW, whose 16-bit pair sums saturate with 8-bit weights, and NanoDet-m then scores wrong
or nothing (measured, with the other recipes tried: ``docs/benchmarks.md``). Activation ranges
(min/max) come from calibration tensors fed exactly as the detector feeds frames.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

QUANTIZER_VERSION = 2  # bump when the recipe below changes: cached INT8 graphs are named after it


def quantize_static_int8(model_path: Path, out_path: Path, input_name: str, calibration: Iterable[np.ndarray]) -> None:
    """Write an INT8 (U8S8, per-channel 7-bit weights) copy of ``model_path`` to ``out_path``, its activation
    ranges calibrated (min/max) on ``calibration``: input tensors as the model takes them."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    tensors = [{input_name: np.asarray(tensor, np.float32)} for tensor in calibration]
    if not tensors:
        raise ValueError("quantizing needs at least one calibration tensor (frames the model will see)")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(tensors)

        def get_next(self) -> dict | None:
            return next(self._feeds, None)

    with tempfile.TemporaryDirectory(prefix="spoton-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"  # shapes inferred, graph folded: what the quantizer expects
        quant_pre_process(str(model_path), str(prepared))
        quantize_static(str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        reduce_range=True, calibrate_method=CalibrationMethod.MinMax)
