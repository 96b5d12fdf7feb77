"""Static phantoms on hand-made tracks: an object the detector sees as a person is dropped, people
who walk, stand still or stop briefly are kept."""
import numpy as np
import pandas as pd
import pytest

from spoton.phantoms import StaticConfig, drop_static, static_tracks, track_motion

FPS = 7.0


def track(camera, segment, track_id, seconds, x, y, height=100.0, height_sway=0.0, seed=0):
    """One tracker track sampled at 7 fps; ``x``, ``y`` map metres as functions of time."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, seconds, 1 / FPS)
    h = height * (1 + height_sway * np.sin(2 * np.pi * 0.5 * t)) + rng.normal(0, 0.5, len(t))
    return pd.DataFrame({"camera": camera, "segment": segment, "track_id": track_id, "ts": t,
                         "x1": 100.0, "y1": 300.0 - h, "x2": 140.0, "y2": 300.0,
                         "map_x": x(t) + rng.normal(0, 0.02, len(t)), "map_y": y(t) + rng.normal(0, 0.02, len(t)),
                         "tracklet_id": f"{camera}/{segment}/{track_id}"})


def bollard(camera="cam2", segment="01", track_id=5, seconds=20.0, seed=1):
    return track(camera, segment, track_id, seconds, lambda t: 6.9 + 0 * t, lambda t: -5.2 + 0 * t, seed=seed)


def walker(track_id=1, seconds=20.0):
    return track("cam2", "01", track_id, seconds, lambda t: 1.3 * t, lambda t: 0 * t, height_sway=0.05)


def stander(track_id=2, seconds=30.0):
    """Someone waiting: the foot point wanders ~0.3-0.4 m as they shift and turn, the box sways."""
    return track("cam2", "01", track_id, seconds, lambda t: 3 + 0.35 * np.sin(0.4 * t), lambda t: 2 + 0.25 * np.cos(0.3 * t),
                 height_sway=0.08)


def test_a_bollard_is_dropped_and_walkers_and_a_standing_person_are_kept():
    boxes = pd.concat([bollard(), walker(), stander()], ignore_index=True)
    kept, static = drop_static(boxes)
    assert static["track_id"].tolist() == [5]
    assert set(kept["track_id"]) == {1, 2} and len(kept) == len(boxes) - len(bollard())


def test_a_short_pause_is_not_an_object():
    # standing perfectly still for 3 s (under min_duration_s), then walking away
    pause = track("cam2", "01", 3, 3.0, lambda t: 2 + 0 * t, lambda t: 1 + 0 * t)
    assert static_tracks(pd.concat([pause, walker()]), StaticConfig()).empty


def test_a_still_box_that_changes_shape_is_a_person():
    # still feet but the box height swings by 10%: a person turning, bending, gesturing
    fidget = track("cam2", "01", 4, 20.0, lambda t: 2 + 0 * t, lambda t: 1 + 0 * t, height_sway=0.1)
    assert static_tracks(fidget).empty
    assert not static_tracks(bollard()).empty


def test_the_same_object_picked_up_again_briefly_goes_with_it():
    # the bollard's track in the next segment lasts 1 s only; a person passing 2 m away is kept
    short = bollard(segment="02", track_id=9, seconds=1.0, seed=2)
    passer = track("cam2", "02", 8, 1.0, lambda t: 8.9 + 0 * t, lambda t: -5.2 + 0 * t)
    static = static_tracks(pd.concat([bollard(), short, passer], ignore_index=True))
    assert sorted(zip(static["segment"], static["track_id"])) == [("01", 5), ("02", 9)]
    # the same short track in another camera is not picked up by cam2's object
    elsewhere = bollard(camera="cam3", segment="02", track_id=9, seconds=1.0)
    assert static_tracks(pd.concat([bollard(), elsewhere], ignore_index=True))["camera"].tolist() == ["cam2"]


def test_tracks_without_map_positions_are_never_judged():
    blind = bollard().assign(map_x=np.nan, map_y=np.nan)
    kept, static = drop_static(blind)
    assert static.empty and len(kept) == len(blind)


def test_motion_figures():
    motion = track_motion(pd.concat([bollard(), walker()], ignore_index=True)).set_index("track_id")
    assert motion.at[5, "spread_m"] < 0.05 and motion.at[1, "spread_m"] > 10
    assert motion.at[5, "duration_s"] == pytest.approx(20.0 - 1 / FPS)
    assert motion.at[5, "x_m"] == pytest.approx(6.9, abs=0.02)


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="must be positive"):
        StaticConfig(max_spread_m=0)
