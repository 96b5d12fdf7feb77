"""The cache stores derived files (the model modules' ONNX exports) once, atomically, in the folder it is given."""
from pathlib import Path

import pytest

from spoton.artifacts import DEFAULT_CACHE_DIR, cache_dir_from, cached_file


def test_cached_file_is_made_once_and_a_failed_make_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTON_CACHE", str(tmp_path / "from-the-environment"))  # the core never reads it
    calls = []

    def make(path):
        calls.append(path)
        path.write_text("model")

    first = cached_file(tmp_path, "models/m.v1.onnx", make)
    assert first == tmp_path / "models" / "m.v1.onnx" and first.read_text() == "model"
    assert cached_file(tmp_path, "models/m.v1.onnx", make) == first and len(calls) == 1
    assert calls[0] != first, "the maker writes a temporary file, renamed into place"
    assert not (tmp_path / "from-the-environment").exists()

    def broken(path):
        path.write_text("half a model")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        cached_file(tmp_path, "models/m.v2.onnx", broken)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["m.v1.onnx"]


def test_the_edges_cache_folder_is_spoton_cache_else_the_repository_one():
    assert cache_dir_from({"SPOTON_CACHE": "/opt/spoton-cache"}) == Path("/opt/spoton-cache")
    assert cache_dir_from({}) == cache_dir_from({"SPOTON_CACHE": ""}) == DEFAULT_CACHE_DIR
    assert DEFAULT_CACHE_DIR == Path(__file__).resolve().parents[2] / ".cache" / "spoton"
