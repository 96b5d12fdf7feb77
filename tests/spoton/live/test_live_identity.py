"""Online global ids: one id for one person seen by two cameras, apart for two people, healed switches."""
from __future__ import annotations

import numpy as np

from spoton.live.identity import LiveIdentityConfig, LiveIdentityGallery
from spoton.records import CameraFrameResult, Detections, Tracks


def result(camera: str, track_ids: list[int], map_xy: list[tuple[float, float]]) -> CameraFrameResult:
    n = len(track_ids)
    xyxy = np.array([[10 + 20 * i, 10, 20 + 20 * i, 60] for i in range(n)], np.float32).reshape(n, 4)
    tracks = Tracks(xyxy, np.array(track_ids), np.full(n, 0.9), np.zeros(n), np.arange(n))
    return CameraFrameResult(camera, 0, 0.0, (640, 480), Detections.empty(), tracks,
                             np.array(map_xy, np.float64).reshape(n, 2))


def test_overlap_same_person_one_id_two_people_two_ids():
    gallery = LiveIdentityGallery()
    ids = gallery.update({"cam1": result("cam1", [1, 2], [(0.0, 0.0), (6.0, 0.0)]),
                          "cam2": result("cam2", [7], [(0.4, 0.3)])}, now=0.0)
    assert ids["cam1"].tolist() == [1, 2] and ids["cam2"].tolist() == [1]
    # walking on: ids stick to tracks
    ids = gallery.update({"cam1": result("cam1", [1, 2], [(0.5, 0.0), (6.5, 0.0)]),
                          "cam2": result("cam2", [7], [(0.9, 0.2)])}, now=0.5)
    assert ids["cam1"].tolist() == [1, 2] and ids["cam2"].tolist() == [1]


def test_same_camera_never_merges_two_live_tracks():
    gallery = LiveIdentityGallery()
    ids = gallery.update({"cam1": result("cam1", [1, 2], [(0.0, 0.0), (0.3, 0.0)])}, now=0.0)
    assert len(set(ids["cam1"].tolist())) == 2
    # a new track next to a person still tracked in the same camera is someone else
    ids = gallery.update({"cam1": result("cam1", [1, 2, 3], [(0.0, 0.0), (0.3, 0.0), (0.1, 0.1)])}, now=0.1)
    assert len(set(ids["cam1"].tolist())) == 3


def test_tracker_id_switch_is_healed_but_not_after_max_gap():
    gallery = LiveIdentityGallery(LiveIdentityConfig(max_gap_s=2.0))
    first = gallery.update({"cam1": result("cam1", [1], [(0.0, 0.0)])}, now=0.0)["cam1"][0]
    healed = gallery.update({"cam1": result("cam1", [5], [(0.8, 0.0)])}, now=1.0)["cam1"][0]
    assert healed == first
    late = gallery.update({"cam1": result("cam1", [9], [(0.8, 0.0)])}, now=4.0)["cam1"][0]
    assert late != first


def test_uncalibrated_tracks_get_ids_of_their_own_and_galleries_are_independent():
    gallery, other = LiveIdentityGallery(), LiveIdentityGallery()
    ids = gallery.update({"cam1": result("cam1", [1], [(np.nan, np.nan)]),
                          "cam2": result("cam2", [1], [(np.nan, np.nan)])}, now=0.0)
    assert ids["cam1"][0] != ids["cam2"][0]
    assert other.update({"cam1": result("cam1", [4], [(3.0, 3.0)])}, now=0.0)["cam1"].tolist() == [1]
    assert len(gallery) == 2 and len(other) == 1
