"""Re-entry joins on hand-made identities: a person who leaves and comes back is joined; pairs seen at
the same time, too far apart to walk, or with an ambiguous appearance are not."""
import numpy as np
import pandas as pd
import pytest

from spoton.identity.reentry import ReentryConfig, dense_ids, join_reentries

FPS = 7.0
DIM = 32
ON = ReentryConfig(enabled=True)  # off by default: under the sample's annotation a returning person is a new id


def looks(seed: int) -> np.ndarray:
    """A person's appearance: a random direction (distinct people are near orthogonal)."""
    return np.random.default_rng(seed).normal(size=DIM)


def walk(gid: int, t0: float, seconds: float, start, velocity, appearance: np.ndarray, seed: int = 0):
    """One identity made of 2 s tracklets; boxes (tracklet_id, ts, map_x, map_y), its assignments
    and embeddings (the appearance plus a little noise per tracklet)."""
    rng = np.random.default_rng(seed + 100 * gid)
    t = t0 + np.arange(0, seconds, 1 / FPS)
    piece = ((t - t0) // 2).astype(int)
    tids = [f"g{gid}.{p}" for p in piece]
    boxes = pd.DataFrame({"tracklet_id": tids, "ts": t, "map_x": start[0] + velocity[0] * (t - t0),
                          "map_y": start[1] + velocity[1] * (t - t0)})
    unique = sorted(set(tids))
    embeddings = pd.DataFrame({"tracklet_id": unique,
                               "embedding": [appearance + 0.2 * rng.normal(size=DIM) for _ in unique]})
    return boxes, pd.DataFrame({"tracklet_id": unique, "global_id": gid}), embeddings


def scene(*walks):
    boxes, assignments, embeddings = (pd.concat(part, ignore_index=True) for part in zip(*walks))
    return boxes, assignments, embeddings


def groups(result) -> set[frozenset[str]]:
    """Identities as sets of the hand-made ids (the tracklet prefix)."""
    named = result.assignments.assign(made=result.assignments["tracklet_id"].str.split(".").str[0])
    return {frozenset(g) for g in named.groupby("global_id")["made"].unique().map(set)}


def bystanders():
    """Three other people walking across the whole time, to give the appearance a background."""
    return [walk(10 + k, 0.0, 60.0, (-10.0, 3.0 * k), (0.3, 0.0), looks(10 + k)) for k in range(3)]


def test_a_person_who_leaves_and_comes_back_is_joined():
    # gid 1 walks out at x = 5 after 10 s; 20 s later gid 2 (the same appearance) comes in at x = 6
    boxes, assignments, embeddings = scene(walk(1, 0.0, 10.0, (-5.0, 0.0), (1.0, 0.0), looks(1)),
                                           walk(2, 30.0, 10.0, (6.0, 0.0), (-1.0, 0.0), looks(1)), *bystanders())
    result = join_reentries(boxes, assignments, embeddings, ON)
    assert frozenset({"g1", "g2"}) in groups(result)
    assert len(groups(result)) == 4 and len(result.joins) == 1
    assert result.joins.at[0, "gap_s"] == pytest.approx(30.0 - (10.0 - 1 / FPS))


def test_someone_coming_back_twice_is_joined_in_rounds():
    boxes, assignments, embeddings = scene(walk(1, 0.0, 10.0, (-5.0, 0.0), (1.0, 0.0), looks(1)),
                                           walk(2, 30.0, 10.0, (6.0, 0.0), (-1.0, 0.0), looks(1)),
                                           walk(3, 60.0, 10.0, (-3.0, 0.0), (1.0, 0.0), looks(1)), *bystanders())
    assert frozenset({"g1", "g2", "g3"}) in groups(join_reentries(boxes, assignments, embeddings, ON))


def test_identities_seen_at_the_same_time_are_not_joined():
    # same appearance, but gid 2 starts before gid 1 ends: two people (or the resolver's call)
    boxes, assignments, embeddings = scene(walk(1, 0.0, 10.0, (-5.0, 0.0), (1.0, 0.0), looks(1)),
                                           walk(2, 8.0, 10.0, (5.0, 2.0), (-1.0, 0.0), looks(1)), *bystanders())
    result = join_reentries(boxes, assignments, embeddings, ON)
    assert result.joins.empty and len(groups(result)) == 5


def test_too_far_to_walk_in_the_gap_is_not_joined():
    # 40 m in 8 s is 5 m/s
    boxes, assignments, embeddings = scene(walk(1, 0.0, 10.0, (-5.0, 0.0), (1.0, 0.0), looks(1)),
                                           walk(2, 18.0, 10.0, (45.0, 0.0), (-1.0, 0.0), looks(1)), *bystanders())
    assert join_reentries(boxes, assignments, embeddings, ON).joins.empty


def test_an_ambiguous_return_is_not_joined():
    # two later identities look alike (twins, or one person's two fragments): no clear best
    boxes, assignments, embeddings = scene(walk(1, 0.0, 10.0, (-5.0, 0.0), (1.0, 0.0), looks(1)),
                                           walk(2, 30.0, 10.0, (6.0, 0.0), (-1.0, 0.0), looks(1)),
                                           walk(3, 32.0, 10.0, (3.0, 5.0), (-1.0, 0.0), looks(1)), *bystanders())
    assert join_reentries(boxes, assignments, embeddings, ON).joins.empty
    # with a margin of 0 the better one is taken
    assert len(join_reentries(boxes, assignments, embeddings, ReentryConfig(enabled=True, margin=0.0)).joins) == 1


def test_a_different_looking_person_is_not_joined():
    boxes, assignments, embeddings = scene(walk(1, 0.0, 10.0, (-5.0, 0.0), (1.0, 0.0), looks(1)),
                                           walk(2, 30.0, 10.0, (6.0, 0.0), (-1.0, 0.0), looks(2)), *bystanders())
    assert join_reentries(boxes, assignments, embeddings, ON).joins.empty


def test_off_by_default_it_changes_nothing_but_the_numbering():
    boxes, assignments, embeddings = scene(walk(1, 0.0, 10.0, (-5.0, 0.0), (1.0, 0.0), looks(1)),
                                           walk(2, 30.0, 10.0, (6.0, 0.0), (-1.0, 0.0), looks(1)), *bystanders())
    result = join_reentries(boxes, assignments, embeddings)
    assert result.joins.empty and len(groups(result)) == 5


def test_dense_ids_follow_first_appearance():
    boxes = pd.DataFrame({"tracklet_id": ["a", "b", "c"], "ts": [5.0, 1.0, 3.0]})
    assignments = pd.DataFrame({"tracklet_id": ["a", "b", "c"], "global_id": [7, 9, 7]})
    out = dense_ids(boxes, assignments)
    assert out["tracklet_id"].tolist() == ["b", "c", "a"] and out["global_id"].tolist() == [1, 2, 2]
