"""Static phantoms on hand-made tracks: an object the detector sees as a person loses its
identity; people who walk, wait somewhere, or stop briefly keep theirs."""
import numpy as np
import pandas as pd
import pytest

from spoton.identity.phantoms import (StaticConfig, fleeting_identities, motion, resolve_people, shadow_identities,
                                     static_identities)
from spoton.identity.resolver import gather_evidence, resolve_evidence, resolve_global_identities

FPS = 7.0
NO_EMBEDDINGS = pd.DataFrame({"tracklet_id": pd.Series(dtype=object), "embedding": pd.Series(dtype=object)})


def track(camera, segment, track_id, t0, seconds, x, y, height=100.0, height_sway=0.0, seed=0):
    """One tracker track sampled at 7 fps from ``t0``; ``x``, ``y`` map metres as functions of time."""
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(0, seconds, 1 / FPS)
    h = height * (1 + height_sway * np.sin(2 * np.pi * 0.5 * t)) + rng.normal(0, 0.5, len(t))
    foot_x = 300 + 20 * x(t)
    return pd.DataFrame({"camera": camera, "segment": segment, "track_id": track_id, "ts": t,
                         "global_frame": np.round(t * FPS).astype(np.int64),
                         "x1": foot_x - 20, "y1": 300.0 - h, "x2": foot_x + 20, "y2": 300.0,
                         "map_x": x(t) + rng.normal(0, 0.02, len(t)), "map_y": y(t) + rng.normal(0, 0.02, len(t)),
                         "tracklet_id": f"{camera}/{segment}/{track_id}"})


def still(x0, y0):
    return (lambda t: x0 + 0 * t), (lambda t: y0 + 0 * t)


def bollard(camera="cam2", segment="01", track_id=5, t0=0.0, seconds=20.0, seed=1):
    return track(camera, segment, track_id, t0, seconds, *still(6.9, -5.2), seed=seed)


def walker(track_id=1, t0=0.0, seconds=20.0, y=0.0):
    return track("cam2", "01", track_id, t0, seconds, lambda t: -10 + 1.3 * t, lambda t: y + 0 * t, height_sway=0.05)


def test_a_bollard_loses_its_identity_and_a_walker_keeps_it():
    boxes = pd.concat([bollard(), walker()], ignore_index=True)
    result, static = resolve_people(boxes, NO_EMBEDDINGS)
    assert static["tracklets"].tolist() == [["cam2/01/5"]]
    assert result.assignments["tracklet_id"].tolist() == ["cam2/01/1"]
    assert static.at[0, "spread_m"] < 0.05 and static.at[0, "duration_s"] == pytest.approx(20 - 1 / FPS)


def test_someone_who_waits_then_walks_on_keeps_their_identity():
    # the tracker restarts at a segment boundary: segment 01 holds only the 12 s of waiting (a track as
    # still as a bollard), segment 02 the walk away from the same spot; the identity joins them
    x0, y0 = 2.0, 1.0
    wait = track("cam2", "01", 3, 0.0, 12.0, *still(x0, y0), seed=3)
    away = track("cam2", "02", 1, 12.0, 10.0, lambda t: x0 + 1.3 * (t - 12), lambda t: y0 + 0 * t, seed=4)
    boxes = pd.concat([wait, away], ignore_index=True)
    result, static = resolve_people(boxes, NO_EMBEDDINGS)
    assert static.empty
    assert result.assignments["global_id"].nunique() == 1 and len(result.assignments) == 2
    # the same waiting track alone would be judged an object: the identity's life is what saves it
    assert len(resolve_people(wait, NO_EMBEDDINGS)[1]) == 1


def test_a_short_pause_is_not_an_object():
    pause = track("cam2", "01", 3, 0.0, 3.0, *still(2.0, 1.0))  # under min_duration_s
    assert resolve_people(pause, NO_EMBEDDINGS)[1].empty


def test_a_still_box_that_changes_shape_is_a_person():
    # still feet but the box height swings by 10%: a person turning, bending, gesturing
    fidget = track("cam2", "01", 4, 0.0, 20.0, *still(2.0, 1.0), height_sway=0.1)
    labelled = fidget.assign(global_id=1)
    assert static_identities(labelled).empty
    assert not static_identities(bollard().assign(global_id=1)).empty


def test_boxes_without_map_positions_are_never_judged():
    blind = bollard().assign(map_x=np.nan, map_y=np.nan)
    result, static = resolve_people(blind, NO_EMBEDDINGS)
    assert static.empty and len(result.assignments) == 1


def test_motion_figures():
    figures = motion(pd.concat([bollard(), walker()], ignore_index=True), ["track_id"]).set_index("track_id")
    assert figures.at[5, "spread_m"] < 0.05 and figures.at[1, "spread_m"] > 10
    assert figures.at[5, "height_cv"] < 0.01 and figures.at[5, "x_m"] == pytest.approx(6.9, abs=0.02)


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="must be positive"):
        StaticConfig(max_spread_m=0)


def test_the_second_pass_clusters_the_first_pass_evidence_without_the_objects():
    # a bollard next to two walkers who cross it and each other: its links (cannot-links with the walkers
    # seen at the same time elsewhere, candidates near it) leave with it, every other link is unchanged
    boxes = pd.concat([bollard(), walker(), walker(track_id=2, t0=4.0, y=-5.0),
                       track("cam1", "01", 7, 0.0, 20.0, lambda t: -10 + 1.3 * t, lambda t: 0.1 + 0 * t, seed=7)],
                      ignore_index=True)
    evidence = gather_evidence(boxes, NO_EMBEDDINGS)
    dropped = {"cam2/01/5"}
    assert (evidence.links[["tracklet_a", "tracklet_b"]] == "cam2/01/5").any(axis=None)
    reused = resolve_evidence(evidence.without(dropped))
    fresh = resolve_global_identities(boxes[~boxes["tracklet_id"].isin(dropped)], NO_EMBEDDINGS)
    pd.testing.assert_frame_equal(reused.links, fresh.links)
    pd.testing.assert_frame_equal(reused.assignments, fresh.assignments)
    assert reused.diagnostics == fresh.diagnostics and len(reused.links) > 0
    assert "decision" not in evidence.links  # resolving left the shared evidence as it was
    result, static = resolve_people(boxes, NO_EMBEDDINGS)
    assert static["tracklets"].tolist() == [["cam2/01/5"]]
    pd.testing.assert_frame_equal(result.assignments, fresh.assignments)


def test_fleeting_identities_get_no_identity():
    # a 1 s glimpse (a partial box, a reflection) in one camera: shorter than any final camera track
    glimpse = track("cam1", "01", 7, 30.0, 1.0, lambda t: 5 + 0 * t, lambda t: 5 + 0 * t, height_sway=0.1)
    result, _ = resolve_people(pd.concat([walker(), glimpse], ignore_index=True), NO_EMBEDDINGS)
    assert result.assignments["tracklet_id"].tolist() == ["cam2/01/1"]
    assert result.assignments["global_id"].tolist() == [1] and result.diagnostics["fleeting_dropped"] == 1
    labelled = pd.concat([walker().assign(global_id=1), glimpse.assign(global_id=2)], ignore_index=True)
    assert fleeting_identities(labelled, 1.5).tolist() == [2]
    assert fleeting_identities(labelled, 0.5).tolist() == []


def test_weak_identities_get_no_identity_but_a_short_full_view_keeps_it():
    # a box on two people now and then: 20 boxes over 14 s (a person in view fills ~7 frames a second)
    sparse = track("cam1", "01", 8, 10.0, 14.0, lambda t: 5 + 0.5 * (t - 10), lambda t: 5 + 0 * t, height_sway=0.1)
    sparse = sparse.iloc[::5]
    brief = track("cam3", "01", 9, 40.0, 3.0, lambda t: -5 + 1.3 * (t - 40), lambda t: 8 + 0 * t, height_sway=0.1)
    result, _ = resolve_people(pd.concat([walker(), sparse, brief], ignore_index=True), NO_EMBEDDINGS)
    assert sorted(result.assignments["tracklet_id"]) == ["cam2/01/1", "cam3/01/9"]
    assert result.diagnostics["fleeting_dropped"] == 1
    labelled = pd.concat([walker().assign(global_id=1), sparse.assign(global_id=2)], ignore_index=True)
    assert fleeting_identities(labelled, 1.5, 3.0).tolist() == [2]
    assert fleeting_identities(labelled, 1.5, 0.0).tolist() == []


def test_a_box_that_comes_and_goes_in_someone_s_place_is_a_shadow_but_a_companion_is_not():
    # two people walk side by side 0.6 m apart in cam2; a box drawn around both (between them) is
    # detected every other frame: it is in their place at every instant and fills half of its span
    left = track("cam2", "01", 1, 0.0, 16.0, lambda t: -10 + 1.3 * t, lambda t: 0 * t, height_sway=0.05, seed=1)
    right = track("cam2", "01", 2, 0.0, 16.0, lambda t: -10 + 1.3 * t, lambda t: 0.6 + 0 * t, height_sway=0.05,
                  seed=2)
    both = track("cam2", "01", 3, 2.0, 12.0, lambda t: -10 + 1.3 * t, lambda t: 0.3 + 0 * t, height_sway=0.05,
                 seed=3).iloc[::2]
    boxes = pd.concat([left, right, both], ignore_index=True)
    result, _ = resolve_people(boxes, NO_EMBEDDINGS)
    assert sorted(result.assignments["tracklet_id"]) == ["cam2/01/1", "cam2/01/2"]
    assert result.diagnostics["shadows_dropped"] == 1
    labelled = pd.concat([left.assign(global_id=1), right.assign(global_id=2), both.assign(global_id=3)])
    assert shadow_identities(labelled, 1.0, 0.9, 0.75).tolist() == [3]
    assert shadow_identities(labelled, 1.0, 0.9, 0.0).tolist() == []  # off
    assert shadow_identities(labelled, 1.0, 0.9, 0.4).tolist() == []  # it fills half of its span


def test_a_person_seen_now_and_then_on_their_own_is_not_a_shadow():
    # every other frame (a hard view), but nobody else near: a person, not someone's shadow
    alone = track("cam2", "01", 3, 0.0, 12.0, lambda t: -10 + 1.3 * t, lambda t: 5 + 0 * t, height_sway=0.05).iloc[::2]
    boxes = pd.concat([walker(), alone], ignore_index=True)
    assert shadow_identities(pd.concat([walker().assign(global_id=1), alone.assign(global_id=2)]), 1.0, 0.9,
                             0.75).tolist() == []
    result, _ = resolve_people(boxes, NO_EMBEDDINGS)
    assert result.diagnostics["shadows_dropped"] == 0 and result.assignments["global_id"].nunique() == 2


def test_shadow_thresholds_are_checked():
    with pytest.raises(ValueError, match="min_shadow_fill within 0..1"):
        StaticConfig(min_shadow_fill=1.5)
