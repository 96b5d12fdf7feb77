"""Crossings: a tracker's swap where two people overlap is re-decided by motion and appearance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spoton.identity.crossings import CrossingConfig, find_crossings, resolve_crossings

FPS = 7.0
N = 80
W, H = 40.0, 100.0


def _scene(paths: dict[str, np.ndarray], shown: dict[int, np.ndarray]) -> pd.DataFrame:
    """Boxes of tracker tracks; ``shown[track][frame]`` names the person the track's box is on,
    ``paths[person]`` gives that person's foot point (x, y) per frame."""
    rows = []
    for track, who in shown.items():
        foot = np.stack([paths[p][f] for f, p in enumerate(who)])
        rows.append(pd.DataFrame({"track_id": track, "frame_index": np.arange(N), "person": who,
                                  "x1": foot[:, 0] - W / 2, "y1": foot[:, 1] - H, "x2": foot[:, 0] + W / 2,
                                  "y2": foot[:, 1], "conf": 0.9}))
    return pd.concat(rows, ignore_index=True)


def _walk(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    s = np.linspace(0, 1, N)
    return np.column_stack([x0 + (x1 - x0) * s, y0 + (y1 - y0) * s])


def _crossing(swap: bool) -> pd.DataFrame:
    """A walks right and a little down, B walks left and a little up; they meet mid-way (frame ~40)."""
    paths = {"A": _walk(100, 500, 300, 330), "B": _walk(500, 100, 330, 300)}
    after = np.arange(N) >= N // 2
    a = np.where(after & swap, "B", "A")
    b = np.where(after & swap, "A", "B")
    return _scene(paths, {1: a, 2: b})


def _appearance(table: pd.DataFrame, vectors: dict[str, np.ndarray]):
    """An ``embed`` that knows who each crop shows (from the scene's ``person`` column)."""
    person = {(f, round(x, 3)): p for f, x, p in zip(table["frame_index"], table["x1"], table["person"])}

    def embed(crops: pd.DataFrame) -> dict[str, np.ndarray]:
        out = {}
        for name, rows in crops.groupby("tracklet_id"):
            v = sum(vectors[person[(f, round(x, 3))]] for f, x in zip(rows["frame_index"], rows["x1"]))
            out[name] = v / np.linalg.norm(v)
        return out
    return embed


def _people_per_id(table: pd.DataFrame, ids: np.ndarray) -> dict:
    """Corrected id -> the people its rows show outside the overlap (frames 33..47)."""
    outside = ~table["frame_index"].between(33, 47).to_numpy()
    return table[outside].assign(new=ids[outside]).groupby("new")["person"].agg(lambda p: sorted(set(p))).to_dict()


def test_a_crossing_is_found_once_between_the_two_tracks():
    table = _crossing(swap=True)
    crossings = find_crossings(table["track_id"], table["frame_index"], table[["x1", "y1", "x2", "y2"]].to_numpy())
    assert len(crossings) == 1
    c = crossings[0]
    assert c.tracks == (1, 2) and c.start < N // 2 <= c.end and c.end - c.start < 10


@pytest.mark.parametrize("with_appearance", [False, True])
def test_a_swap_at_a_crossing_is_undone(with_appearance):
    table = _crossing(swap=True)
    assert _people_per_id(table, table["track_id"].to_numpy()) == {1: ["A", "B"], 2: ["A", "B"]}
    embed = _appearance(table, {"A": np.array([1.0, 0.2]), "B": np.array([0.2, 1.0])}) if with_appearance else None
    ids, decisions = resolve_crossings(table, CrossingConfig(), embed)
    assert decisions["swapped"].tolist() == [True]
    assert _people_per_id(table, ids) == {1: ["A"], 2: ["B"]}


def test_a_crossing_the_tracker_got_right_stays():
    table = _crossing(swap=False)
    embed = _appearance(table, {"A": np.array([1.0, 0.2]), "B": np.array([0.2, 1.0])})
    ids, decisions = resolve_crossings(table, CrossingConfig(), embed)
    assert len(decisions) == 1 and not decisions["swapped"].any()
    assert np.array_equal(ids, table["track_id"].to_numpy())


def test_appearance_overrules_motion_where_people_turn_back():
    """A and B walk up to each other, meet and each turns back; the tracker kept each track going
    the same way (a swap). Constant velocity agrees with the tracker; their clothes do not."""
    back = np.abs(np.arange(N) - N // 2) * 5.0
    paths = {"A": np.column_stack([300 - back, np.full(N, 300.0)]),
             "B": np.column_stack([300 + back, np.full(N, 305.0)])}
    after = np.arange(N) >= N // 2
    table = _scene(paths, {1: np.where(after, "B", "A"), 2: np.where(after, "A", "B")})
    ids, decisions = resolve_crossings(table, CrossingConfig(), None)
    assert decisions["swapped"].tolist() == [False]  # motion alone: the tracker's answer
    embed = _appearance(table, {"A": np.array([1.0, 0.2]), "B": np.array([0.2, 1.0])})
    ids, decisions = resolve_crossings(table, CrossingConfig(), embed)
    assert decisions["swapped"].tolist() == [True]
    assert _people_per_id(table, ids) == {1: ["A"], 2: ["B"]}


def test_people_walking_side_by_side_are_not_a_crossing():
    """Two people walk together the whole time, boxes overlapping: no crossing, no cut, ids kept."""
    table = _scene({"A": _walk(100, 500, 300, 310), "B": _walk(115, 515, 302, 312)},
                   {1: np.full(N, "A"), 2: np.full(N, "B")})
    embed = _appearance(table, {"A": np.array([1.0, 0.2]), "B": np.array([0.2, 1.0])})
    assert find_crossings(table["track_id"], table["frame_index"], table[["x1", "y1", "x2", "y2"]].to_numpy()) == []
    ids, decisions = resolve_crossings(table, CrossingConfig(), embed)
    assert decisions.empty and np.array_equal(ids, table["track_id"].to_numpy())


def test_a_track_starting_inside_the_crossing_takes_the_lost_person():
    """The tracker lost A in the crossing, B's track went on with A, and B got a new track (3);
    people walk at ~1.3 m/s (10 px a frame for a 100 px tall person at 7 frames/s)."""
    paths = {"A": _walk(-100, 700, 300, 330), "B": _walk(700, -100, 330, 300)}
    after = np.arange(N) >= N // 2
    table = _scene(paths, {1: np.full(N, "A"), 2: np.where(after, "A", "B"), 3: np.full(N, "B")})
    table = table[~((table["track_id"] == 3) & (table["frame_index"] < N // 2 - 2))]  # 3 starts in the overlap
    table = table[~((table["track_id"] == 1) & (table["frame_index"] >= N // 2 - 2))]  # 1 is lost there
    table = table.reset_index(drop=True)
    ids, decisions = resolve_crossings(table, CrossingConfig(), None)
    assert decisions["swapped"].tolist() == [True]
    outside = ~table["frame_index"].between(33, 47).to_numpy()
    people = table[outside].assign(new=ids[outside]).groupby("new")["person"].agg(set)
    assert all(len(p) == 1 for p in people)


def test_config_refuses_impossible_thresholds():
    with pytest.raises(ValueError, match="min_overlap"):
        CrossingConfig(min_overlap=0)
    with pytest.raises(ValueError, match="min_frames"):
        CrossingConfig(min_frames=5, max_frames=3)


def test_someone_leaving_where_another_comes_in_is_not_a_crossing():
    """A track ends with nobody covering it, and a new track starts on its last box 2 s later (a
    person left the view where another entered): no event, so nothing is joined here."""
    table = _scene({"A": _walk(100, 500, 300, 300)}, {1: np.full(N, "A")})
    table = table[table["frame_index"] < 40]
    later = _scene({"B": _walk(500, 100, 300, 300)}, {2: np.full(N, "B")})
    later = later[later["frame_index"] >= 54].assign(x1=lambda t: t["x1"] * 0 + table["x1"].iloc[-1],
                                                     x2=lambda t: t["x2"] * 0 + table["x2"].iloc[-1])
    both = pd.concat([table, later], ignore_index=True)
    assert find_crossings(both["track_id"], both["frame_index"], both[["x1", "y1", "x2", "y2"]].to_numpy()) == []


def test_clean_camera_tracks_undoes_the_swap_before_stitching():
    """`spoton track`'s offline pass: on by default; ``crossings=None`` keeps the tracker's answer."""
    from spoton.identity.postprocess import OfflineConfig, clean_camera_tracks

    table = _crossing(swap=True).assign(ts=lambda t: t["frame_index"] / FPS, map_x=np.nan, map_y=np.nan)
    cleaned = clean_camera_tracks(table, FPS)
    assert _people_per_id(cleaned, cleaned["track_id"].to_numpy()) == {1: ["A"], 2: ["B"]}
    kept = clean_camera_tracks(table, FPS, OfflineConfig(crossings=None))
    assert _people_per_id(kept, kept["track_id"].to_numpy()) == {1: ["A", "B"], 2: ["A", "B"]}
