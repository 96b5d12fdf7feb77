"""The cache stores derived files (the model modules' ONNX exports) once, atomically."""
import pytest

from spoton.artifacts import cached_file


def test_cached_file_is_made_once_and_a_failed_make_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTON_CACHE", str(tmp_path))
    calls = []

    def make(path):
        calls.append(path)
        path.write_text("model")

    first = cached_file("models/m.v1.onnx", make)
    assert first == tmp_path / "models" / "m.v1.onnx" and first.read_text() == "model"
    assert cached_file("models/m.v1.onnx", make) == first and len(calls) == 1
    assert calls[0] != first, "the maker writes a temporary file, renamed into place"

    def broken(path):
        path.write_text("half a model")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        cached_file("models/m.v2.onnx", broken)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["m.v1.onnx"]
