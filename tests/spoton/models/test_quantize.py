"""INT8 copies of a detector: quantized operators, outputs close to the float graph's, and (NanoDet)
the same people found on a sample frame."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from spoton.evaluation.metrics import iou_matrix
from spoton.models.detector import NanoDetDetector, build_detector, nanodet_onnx_path
from spoton.models.quantize import quantize_static_int8


def _conv_model(path, rng):
    weight = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], [weight, bias])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_the_int8_copy_runs_quantized_convolutions_close_to_the_float_graph(tmp_path):
    rng = np.random.default_rng(0)
    _conv_model(tmp_path / "f.onnx", rng)
    calibration = [rng.uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(8)]
    quantize_static_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", "x", calibration)
    ops = {node.op_type for node in onnx.load(tmp_path / "q.onnx").graph.node}
    assert "QLinearConv" in ops and "Conv" not in ops
    x = calibration[0]  # within the calibrated ranges (values beyond them clip)
    reference, quantized = _run(tmp_path / "f.onnx", x), _run(tmp_path / "q.onnx", x)
    assert np.abs(quantized - reference).max() <= 0.03 * np.abs(reference).max()


def test_quantizing_without_calibration_frames_says_what_is_missing(tmp_path):
    _conv_model(tmp_path / "f.onnx", np.random.default_rng(0))
    with pytest.raises(ValueError, match="calibration tensor"):
        quantize_static_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", "x", [])


def test_a_precision_other_than_the_default_nanodets_is_refused(tmp_path, cache_dir):
    with pytest.raises(ValueError, match="use one of fp32, int8"):
        nanodet_onnx_path(cache_dir, "fp16")
    with pytest.raises(ValueError, match="default NanoDet"):
        build_detector("yolo", tmp_path / "y.onnx", precision="int8")
    with pytest.raises(ValueError, match="quantize your own"):
        NanoDetDetector(tmp_path / "m.onnx", precision="int8")


@pytest.mark.integration
def test_int8_nanodet_finds_the_people_fp32_finds(cache_dir, frame_100):
    fp32 = NanoDetDetector(cache_dir=cache_dir, threads=1).detect(frame_100)
    int8_detector = NanoDetDetector(cache_dir=cache_dir, threads=1, precision="int8")
    assert any(node.op_type == "QLinearConv" for node in onnx.load(int8_detector.session._model_path).graph.node)
    int8 = int8_detector.detect(frame_100)
    confident = fp32[fp32.confidence >= 0.4]
    assert len(confident) >= 5 and len(int8)
    matched = iou_matrix(confident.xyxy, int8.xyxy).max(axis=1) >= 0.5
    assert matched.mean() >= 0.8, f"{matched.sum()} of {len(confident)} confident fp32 people found in INT8"
