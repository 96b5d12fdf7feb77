"""Cutting tracks into tracklets, and why: a tracker's swap at a crossing is undone by the cameras."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spoton.identity.resolver import resolve_global_identities
from spoton.identity.postprocess import (OfflineConfig, TrackletCut, clean_environment_tracks, cut_by_view,
                                        tracklet_pieces)

FPS = 7.0


def test_pieces_start_after_missed_frames_and_every_max_frames():
    ids = np.array([5, 5, 5, 5, 7, 7, 5, 7])
    frames = np.array([0, 1, 4, 5, 0, 3, 9, 4])
    # track 5: frames 0 1 | 4 5 | 9 (2 and 3 missed frames); track 7: 0 | 3 4 (2 missed)
    assert tracklet_pieces(ids, frames, 2, None).tolist() == [0, 0, 1, 1, 0, 1, 2, 1]
    # one missed frame is not a re-acquisition
    assert tracklet_pieces(ids, frames, 3, None).tolist() == [0, 0, 0, 0, 0, 0, 1, 0]
    # windows restart after a re-acquisition: 0 1 2 | 3 ... 7 8 9 | 10
    frames = np.array([0, 1, 2, 3, 7, 8, 9, 10])
    assert tracklet_pieces(np.zeros(8), frames, 2, 3).tolist() == [0, 0, 0, 1, 2, 2, 2, 3]
    assert tracklet_pieces(np.zeros(8), frames, None, None).tolist() == [0] * 8


def test_tracklet_ids_name_camera_segment_track_and_piece():
    cut = TrackletCut(split_after_missed_frames=2, max_tracklet_s=1.0)  # 2 frames at 2 frames/s
    ids = cut.tracklet_ids(["cam1"] * 5 + ["cam2"], ["01"] * 6, [3] * 6, [0, 1, 2, 9, 10, 0], frame_rate=2.0)
    assert ids == ["cam1/01/3", "cam1/01/3", "cam1/01/3.1", "cam1/01/3.2", "cam1/01/3.2", "cam2/01/3"]
    uncut = TrackletCut(None, None).tracklet_ids(["cam1"] * 5, ["01"] * 5, [3] * 5, [0, 1, 2, 9, 10], 2.0)
    assert uncut == ["cam1/01/3"] * 5


def test_pieces_do_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    ids = np.repeat([3, 1, 2], 20)
    frames = np.concatenate([np.sort(rng.choice(60, 20, replace=False)) for _ in range(3)])
    expected = tracklet_pieces(ids, frames, 2, 5)
    shuffle = rng.permutation(len(ids))
    assert np.array_equal(tracklet_pieces(ids[shuffle], frames[shuffle], 2, 5), expected[shuffle])


def _crossing_scene(rng: np.random.Generator) -> pd.DataFrame:
    """Two people cross diagonally; cam1's tracker swaps them at the crossing, cam2's does not.

    Rows carry ``track_id`` and the ``person`` actually shown; there are no embeddings, so geometry
    alone has to put the pieces right.
    """
    t = np.arange(0, 11.0, 1 / FPS)
    s = t / t[-1]
    people = {"A": np.column_stack([10 * s, 10 * s]), "B": np.column_stack([10 * s, 10 - 10 * s])}
    swap = t >= t[-1] / 2
    shown = {("cam1", 1): np.where(swap, "B", "A"), ("cam1", 2): np.where(swap, "A", "B"),
             ("cam2", 1): np.full(len(t), "A"), ("cam2", 2): np.full(len(t), "B")}
    rows = []
    for (camera, track), who in shown.items():
        xy = np.where((who == "A")[:, None], people["A"], people["B"]) + rng.normal(0, 0.1, (len(t), 2))
        rows.append(pd.DataFrame({"camera": camera, "segment": "01", "track_id": track, "frame": np.arange(len(t)),
                                  "ts": t, "map_x": xy[:, 0], "map_y": xy[:, 1], "person": who, "conf": 0.8,
                                  "x1": 100.0, "y1": 100.0, "x2": 140.0, "y2": 200.0}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("cut, right_share", [((None, None), (0.0, 0.75)), ((2, 14), (0.9, 1.0))])
def test_two_second_pieces_let_the_other_camera_undo_a_swap_at_a_crossing(cut, right_share):
    boxes = _crossing_scene(np.random.default_rng(1))
    pieces = tracklet_pieces(boxes["camera"] + "/" + boxes["track_id"].astype(str), boxes["frame"], *cut)
    boxes["tracklet_id"] = boxes["camera"] + "/01/" + boxes["track_id"].astype(str) + "." + pieces.astype(str)
    empty = pd.DataFrame({"tracklet_id": pd.Series(dtype=object), "embedding": pd.Series(dtype=object)})
    assignments = resolve_global_identities(boxes, empty).assignments
    boxes = boxes.merge(assignments, on="tracklet_id")
    # cam2 shows each person under one id throughout: that id is the person's
    truth = boxes[boxes["camera"] == "cam2"].groupby("person")["global_id"].agg(pd.Series.mode)
    assert truth["A"] != truth["B"]
    cam1 = boxes[boxes["camera"] == "cam1"]
    share = float((cam1["global_id"].to_numpy() == truth[cam1["person"]].to_numpy()).mean())
    assert right_share[0] <= share <= right_share[1]


def _view_boxes(x1, y1, x2, y2, width=640.0, height=480.0):
    """Tracklet rows of one camera, one box a frame at 7 fps, with the normalised ``bbox_*`` columns."""
    n = len(x1)
    boxes = pd.DataFrame({"camera": "cam1", "global_frame": np.arange(n), "ts": np.arange(n) / FPS,
                          "global_id": 1, "tracklet_id": "cam1/01/1", "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                          "conf": 0.8, "map_x": np.linspace(0, 1, n), "map_y": 0.0})
    return boxes.assign(bbox_x=boxes["x1"] / width, bbox_y=boxes["y1"] / height,
                        bbox_w=(boxes["x2"] - boxes["x1"]) / width, bbox_h=(boxes["y2"] - boxes["y1"]) / height)


def test_boxes_cut_by_the_side_or_bottom_of_the_view_are_partial_views():
    boxes = _view_boxes(x1=[-4.0, 300, 610, 300, 300], y1=[100.0, 100, 100, 380, -10],
                        x2=[30.0, 340, 645, 340, 340], y2=[200.0, 200, 200, 480, 90])
    # left edge, inside, right edge, feet at the bottom, head above the top (feet in view)
    assert cut_by_view(boxes, 0.01).tolist() == [True, False, True, True, False]
    assert not cut_by_view(boxes.drop(columns=["bbox_x", "bbox_y", "bbox_w", "bbox_h"]), 0.01).any()


def test_final_tracks_keep_partial_boxes_and_place_them_only_where_a_camera_sees_the_person_whole():
    # a person walks in through cam1's left border: its first 3 boxes are cut, the walk is whole after
    x1 = np.array([-20.0, -10, 0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 220, 240, 260])
    boxes = _view_boxes(x1=x1, y1=np.full(16, 100.0), x2=x1 + 40, y2=np.full(16, 220.0))
    tracks = clean_environment_tracks(boxes, 1, FPS)
    assert len(tracks) == 16 and tracks["global_id"].eq(1).all()  # the camera's track is whole
    assert tracks["map_x"].isna().tolist() == [True] * 3 + [False] * 13
    assert tracks["map_x"].iloc[3:].tolist() == pytest.approx(boxes["map_x"].iloc[3:].tolist())
    # a box filled into a hole takes the flag of the box before the hole
    holed = clean_environment_tracks(boxes.drop(index=[1, 4]), 1, FPS)
    assert holed["interpolated"].tolist().count(True) == 2
    assert holed["map_x"].isna().tolist() == [True] * 3 + [False] * 13
    kept = clean_environment_tracks(boxes, 1, FPS, OfflineConfig(partial_view_margin=None))
    assert kept["map_x"].notna().all()
    # cam2 sees the same person whole from the second instant (its hole at the third is filled): there
    # cam1's cut boxes keep their positions too, for the fused position
    whole = _view_boxes(x1=[300.0] * 16, y1=[100.0] * 16, x2=[340.0] * 16, y2=[220.0] * 16).drop(index=[0, 2])
    both = clean_environment_tracks(pd.concat([boxes, whole.assign(camera="cam2", tracklet_id="cam2/01/1")]), 1, FPS)
    assert both.loc[both["camera"] == "cam1", "map_x"].isna().tolist() == [True] + [False] * 15
    assert both.loc[both["camera"] == "cam2", "map_x"].notna().all()


def test_a_partial_view_margin_outside_the_frame_is_refused():
    with pytest.raises(ValueError, match="fraction of the frame"):
        OfflineConfig(partial_view_margin=0.5)
