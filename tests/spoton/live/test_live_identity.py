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


def unit(*values: float, dim: int = 8) -> np.ndarray:
    vector = np.zeros(dim, np.float32)
    vector[:len(values)] = values
    return vector / np.linalg.norm(vector)


ALICE, BOB = unit(1, 0.2), unit(0.1, 1)  # cosine ~0.29: different people


def test_after_an_occlusion_appearance_and_motion_give_the_old_id_back():
    gallery = LiveIdentityGallery(LiveIdentityConfig(max_gap_s=2.0, reacquire_gap_s=10.0))
    first = gallery.update({"cam1": result("cam1", [1, 2], [(0.0, 0.0), (8.0, 0.0)])}, now=0.0,
                           embeddings={"cam1": {0: ALICE, 1: BOB}})["cam1"]
    # 6 s behind a pillar (beyond max_gap_s): a new track 3 m on, looking like Alice, takes her id back
    ids = gallery.update({"cam1": result("cam1", [7], [(3.0, 0.0)])}, now=6.0, embeddings={"cam1": {0: unit(1, 0.25)}})
    assert ids["cam1"].tolist() == [first[0]] and gallery.reacquired == 1
    # motion must agree too: Bob's look-alike 30 m from where Bob was is someone new
    far = gallery.update({"cam1": result("cam1", [7, 8], [(3.1, 0.0), (38.0, 0.0)])}, now=6.5,
                         embeddings={"cam1": {1: BOB}})["cam1"]
    assert far[1] not in first.tolist()
    # a stranger where Bob vanished, not looking like him, is someone new as well
    new = gallery.update({"cam1": result("cam1", [7, 9], [(3.2, 0.0), (8.5, 0.0)])}, now=7.0,
                         embeddings={"cam1": {1: unit(0, 0, 1)}})["cam1"]
    assert new[1] not in first.tolist() and gallery.reacquired == 1


def test_without_appearance_a_long_gap_founds_a_new_identity_as_before():
    gallery = LiveIdentityGallery(LiveIdentityConfig(max_gap_s=2.0))
    first = gallery.update({"cam1": result("cam1", [1], [(0.0, 0.0)])}, now=0.0)["cam1"][0]
    assert gallery.update({"cam1": result("cam1", [7], [(1.0, 0.0)])}, now=6.0)["cam1"][0] != first


def test_a_young_track_whose_later_crop_matches_moves_to_the_old_identity():
    gallery = LiveIdentityGallery(LiveIdentityConfig(max_gap_s=2.0, rebind_s=1.0))
    alice = gallery.update({"cam1": result("cam1", [1], [(0.0, 0.0)])}, now=0.0, embeddings={"cam1": {0: ALICE}})["cam1"][0]
    # back after 5 s, first crop half occluded (looks like nobody), so a new id at first
    young = gallery.update({"cam1": result("cam1", [4], [(2.0, 0.0)])}, now=5.0,
                           embeddings={"cam1": {0: unit(0, 0, 0, 1)}})["cam1"][0]
    assert young != alice
    # its next, clear crop matches Alice: the track moves to her id, the young id is dropped
    ids = gallery.update({"cam1": result("cam1", [4], [(2.2, 0.0)])}, now=5.5, embeddings={"cam1": {0: ALICE}})
    assert ids["cam1"].tolist() == [alice] and young not in gallery._identities
    # and keeps it
    assert gallery.update({"cam1": result("cam1", [4], [(2.4, 0.0)])}, now=6.0)["cam1"].tolist() == [alice]
    # past rebind_s a track keeps its own id, whatever it looks like
    other = gallery.update({"cam1": result("cam1", [4, 5], [(2.4, 0.0), (9.0, 0.0)])}, now=6.5,
                           embeddings={"cam1": {1: BOB}})["cam1"][1]
    later = gallery.update({"cam1": result("cam1", [4, 5], [(2.4, 0.0), (9.0, 0.0)])}, now=8.0,
                           embeddings={"cam1": {1: ALICE}})["cam1"][1]
    assert later == other

