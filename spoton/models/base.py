"""What the processor needs of a model, without importing ONNX Runtime or torch."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from spoton.records import Detections


class Detector(Protocol):
    """Finds people in one BGR frame."""

    def detect(self, frame: np.ndarray) -> Detections: ...


class Embedder(Protocol):
    """Anything that turns boxes of one frame into L2-normalised appearance vectors."""

    dim: int

    def embed(self, frame: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """(N, dim) float32, rows L2-normalised; N=0 gives (0, dim)."""
        ...
