"""Detector and appearance-embedder models (ONNX Runtime, torch)."""
