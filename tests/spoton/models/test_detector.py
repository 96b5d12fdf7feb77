import numpy as np
import pytest

from spoton.errors import MissingWeightsError
from spoton.models.detector import DetectorConfig, NanoDetDetector, build_detector, resize_for_model


@pytest.fixture(scope="module")
def detector(cache_dir):
    return NanoDetDetector(cache_dir=cache_dir)


def test_finds_the_people_on_vtest_frame_100(detector, frame_100):
    detections = detector.detect(frame_100)
    confident = detections[detections.confidence >= 0.4]
    assert len(confident) >= 5
    height, width = frame_100.shape[:2]
    assert (confident.xyxy[:, [0, 2]] >= 0).all() and (confident.xyxy[:, [0, 2]] <= width).all()
    assert (confident.xyxy[:, [1, 3]] >= 0).all() and (confident.xyxy[:, [1, 3]] <= height).all()
    heights = confident.xyxy[:, 3] - confident.xyxy[:, 1]
    widths = confident.xyxy[:, 2] - confident.xyxy[:, 0]
    assert (heights > widths).all(), "people are taller than wide"
    assert (confident.class_id == 0).all()
    assert np.all(np.diff(detections.confidence) <= 0), "sorted by confidence"


def test_decoding_only_confident_cells_keeps_exactly_those_cells(detector, frame_100):
    tensor, _, _ = detector.preprocess(frame_100)
    outputs = detector.session.run(detector.output_names, {detector.input_name: tensor})
    every_box, every_score, every_class = detector.decode(outputs)
    boxes, scores, classes = detector.decode(outputs, min_score=0.2)
    confident = every_score >= 0.2
    assert 0 < confident.sum() < len(every_score)
    np.testing.assert_allclose(boxes, every_box[confident], rtol=1e-6)
    np.testing.assert_array_equal(scores, every_score[confident])
    np.testing.assert_array_equal(classes, every_class[confident])


def test_nothing_on_a_blank_frame(detector):
    assert len(detector.detect(np.full((480, 640, 3), 127, np.uint8))) == 0


def test_threshold_and_nms_apply(frame_100, cache_dir):
    loose = NanoDetDetector(config=DetectorConfig(score_threshold=0.1, nms_iou=0.9), cache_dir=cache_dir)
    strict = NanoDetDetector(config=DetectorConfig(score_threshold=0.5, nms_iou=0.3), cache_dir=cache_dir)
    loose, strict = loose.detect(frame_100), strict.detect(frame_100)
    assert len(loose) > len(strict) > 0
    assert strict.confidence.min() >= 0.5


def test_letterbox_maps_boxes_back_to_frame_pixels(frame_100, cache_dir):
    stretch = NanoDetDetector(cache_dir=cache_dir).detect(frame_100)
    letterbox = NanoDetDetector(config=DetectorConfig(resize="letterbox"), cache_dir=cache_dir).detect(frame_100)
    best = stretch.xyxy[0]
    distances = np.abs(letterbox.xyxy - best).max(axis=1)
    assert distances.min() < 12, "the strongest person is found at the same place by both resize modes"


def test_resize_for_model_inverse_mapping():
    frame = np.zeros((576, 768, 3), np.uint8)
    image, scale, offset = resize_for_model(frame, (416, 416), "letterbox")
    assert image.shape == (416, 416, 3)
    corner = np.array([416, 416 - (416 - 312) / 2]) * scale + offset
    np.testing.assert_allclose(corner, [768, 576], atol=1.5)


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(MissingWeightsError, match="does not exist: run `make models`"):
        NanoDetDetector(tmp_path / "missing.onnx")
    with pytest.raises(MissingWeightsError, match="needs --detector-model"):
        build_detector("yolo")
    with pytest.raises(ValueError, match="unknown detector"):
        build_detector("rcnn")


def test_yolo_layout_is_decoded(tmp_path, frame_100):
    """An ONNX model with the Ultralytics v8/v11 output layout (1, 4 + 80, anchors)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    predictions = np.zeros((1, 84, 3), np.float32)
    predictions[0, :4, 0] = [320, 240, 40, 120]  # cx, cy, w, h of a person in a 640x640 input
    predictions[0, 4, 0] = 0.9
    predictions[0, :4, 1] = [100, 100, 50, 50]  # a car: ignored with person_only
    predictions[0, 4 + 2, 1] = 0.95
    predictions[0, :4, 2] = [322, 242, 40, 118]  # duplicate of the person: removed by NMS
    predictions[0, 4, 2] = 0.6
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["output0"], value=numpy_helper.from_array(predictions))],
        "yolo_layout", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 84, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "yolo.onnx")

    detections = build_detector("yolo", tmp_path / "yolo.onnx").detect(frame_100)
    assert len(detections) == 1
    # 768x576 letterboxed into 640x640: image 640x480 with 80 px of padding above; frame = 1.2 * model
    np.testing.assert_allclose(detections.xyxy[0], [300 * 1.2, (180 - 80) * 1.2, 340 * 1.2, (300 - 80) * 1.2],
                               atol=1.0)
