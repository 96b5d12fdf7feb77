"""Streamlit glue shared by the pages: the sidebar's selection and cached reads (keyed on the catalog's
modification time, so a rebuilt catalog is read again)."""
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import streamlit as st

import review_data as rd


@dataclass(frozen=True)
class Selection:
    paths: rd.ReviewPaths
    environment: str
    segment: str

    @property
    def stamp(self) -> int:
        return self.paths.catalog.stat().st_mtime_ns


def remember(paths: rd.ReviewPaths, environment: str, segment: str) -> None:
    st.session_state["selection"] = Selection(paths, environment, segment)


def selection() -> Selection:
    return st.session_state["selection"]


def rgb(image_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


@st.cache_data(show_spinner=False)
def query(paths: rd.ReviewPaths, name: str, environment: str, stamp: int) -> pd.DataFrame:
    """``review_data.<name>(paths, environment)``, cached per catalog version."""
    return getattr(rd, name)(paths, environment)


@st.cache_data(show_spinner=False)
def gallery(paths: rd.ReviewPaths, environment: str, global_id: int, stamp: int) -> list[dict]:
    return rd.gallery(paths, environment, global_id)


@st.cache_resource(show_spinner=False)
def search_index(paths: rd.ReviewPaths, environment: str, stamp: int):
    return rd.search_index(paths, environment)


def refresh() -> None:
    """After the catalog changed underneath the app."""
    st.cache_data.clear()
    st.cache_resource.clear()
