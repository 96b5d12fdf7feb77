"""Shared fixtures: real sample video, real models, the optional ../shared oracles."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("SPOTON_SHARED", REPO_ROOT.parent / "shared"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """vtest.avi (PETS 2009 S2.L1 view 1), fetched into the cache by `make models`."""
    from spoton.artifacts import fetch_sample_video

    return fetch_sample_video()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"oracle folder {SHARED_DIR} is absent (set SPOTON_SHARED to its path)")
    return SHARED_DIR


def read_frame(path: Path, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok, f"could not read frame {index} of {path}"
    return frame


@pytest.fixture(scope="session")
def frame_100(sample_video) -> np.ndarray:
    return read_frame(sample_video, 100)
