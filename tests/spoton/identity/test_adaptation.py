"""The per-environment appearance adaptation (spoton.identity.adaptation), on the sample
environment's real tracklets (tests/support/adaptation_sample.py) and small hand-made cases."""
import numpy as np
import pandas as pd
import pytest

from spoton.identity.adaptation import (AdaptationParams, ProjectionHead, adapt_environment, auc, separation,
                                        split_held_out, tracklet_pairs)
from spoton.identity.resolver import IdentityConfig, resolve_global_identities
from support.adaptation_sample import load_adaptation_sample


@pytest.fixture(scope="module")
def sample():
    return load_adaptation_sample()


def _labelled_separation(features: np.ndarray, people: np.ndarray):
    i, j = np.triu_indices(len(people), 1)
    same = people[i] == people[j]
    return separation(features, np.column_stack([i[same], j[same]]), np.column_stack([i[~same], j[~same]]))


def test_adaptation_raises_same_vs_different_auc_on_the_sample_tracklets(sample):
    boxes, embeddings, person = sample
    result = adapt_environment(boxes, embeddings, AdaptationParams())
    # the self-supervised held-out pairs (what the asset check reports)
    assert result.before.same_pairs > 20 and result.before.different_pairs > 20
    assert result.after.auc > result.before.auc + 0.02
    assert result.after.gap > result.before.gap
    # the ground truth, on tracklets of the held-out tracks only (never trained on)
    pairs = tracklet_pairs(boxes, embeddings, result.head.params)
    _, held = split_held_out(pairs, result.head.params)
    people = np.array([person[t] for t in pairs.tracklet_ids])
    keep = held & (people >= 0)
    raw = _labelled_separation(pairs.features[keep], people[keep])
    adapted = _labelled_separation(result.head.project(pairs.features[keep]), people[keep])
    assert raw.same_pairs > 50
    assert raw.auc < 0.85  # ImageNet features separate people weakly
    assert adapted.auc > raw.auc + 0.05


def test_pairs_come_from_tracks_covisibility_and_distance():
    # cam1 track 0 cut in two pieces (0, 0.1) beside track 1 at the same instants; cam2 sees the
    # person of track 0 at the same spot (a sure cross-camera join) and someone 6 m away
    rows = []
    for frame in range(10):
        rows += [("cam1/01/0" if frame < 5 else "cam1/01/0.1", "cam1", 0, frame, 0.0, 0.0),
                 ("cam1/01/1", "cam1", 1, frame, 0.0, 3.0),
                 ("cam2/01/0", "cam2", 0, frame, 0.1, 0.0),
                 ("cam2/01/5", "cam2", 5, frame, 6.0, 0.0)]
    boxes = pd.DataFrame(rows, columns=["tracklet_id", "camera", "track_id", "global_frame", "map_x", "map_y"])
    boxes["segment"] = "01"
    ids = sorted(boxes["tracklet_id"].unique())
    embeddings = pd.DataFrame({"tracklet_id": ids, "embedding": list(np.eye(len(ids), 8, dtype=np.float32))})
    pairs = tracklet_pairs(boxes, embeddings, AdaptationParams(ambiguity_m=2.5))
    name = dict(enumerate(pairs.tracklet_ids))
    positives = {frozenset((name[a], name[b])) for a, b in pairs.positives}
    negatives = {frozenset((name[a], name[b])) for a, b in pairs.negatives}
    assert positives == {frozenset(("cam1/01/0", "cam1/01/0.1")), frozenset(("cam1/01/0", "cam2/01/0")),
                         frozenset(("cam1/01/0.1", "cam2/01/0"))}
    # co-visible in one camera, and far apart across cameras (cam1/01/1 is 3 m from cam2/01/0:
    # neither a sure join nor far enough to be a negative)
    assert frozenset(("cam1/01/0", "cam1/01/1")) in negatives
    assert frozenset(("cam2/01/0", "cam2/01/5")) in negatives
    assert frozenset(("cam1/01/0", "cam2/01/5")) in negatives
    assert frozenset(("cam1/01/1", "cam2/01/0")) not in negatives | positives
    assert not positives & negatives


def test_a_crowded_cross_camera_pair_is_no_positive():
    # cam2 sees two people 0.8 m apart around cam1's person: geometry cannot say which one it is
    rows = []
    for frame in range(6):
        rows += [("cam1/01/0", "cam1", 0, frame, 0.0, 0.0), ("cam2/01/0", "cam2", 0, frame, 0.1, 0.0),
                 ("cam2/01/1", "cam2", 1, frame, 0.9, 0.0)]
    boxes = pd.DataFrame(rows, columns=["tracklet_id", "camera", "track_id", "global_frame", "map_x", "map_y"])
    boxes["segment"] = "01"
    embeddings = pd.DataFrame({"tracklet_id": ["cam1/01/0", "cam2/01/0", "cam2/01/1"],
                               "embedding": list(np.eye(3, 4, dtype=np.float32))})
    assert len(tracklet_pairs(boxes, embeddings).positives) == 0


def test_head_round_trips_through_bytes_with_its_version(sample):
    boxes, embeddings, _ = sample
    head = adapt_environment(boxes, embeddings, AdaptationParams(steps=5)).head
    again = ProjectionHead.from_bytes(head.to_bytes())
    assert again.version == head.version and again.params == head.params
    features = np.stack(embeddings["embedding"].head(5).to_numpy())
    np.testing.assert_allclose(again.project(features), head.project(features), atol=1e-5)
    assert np.allclose(np.linalg.norm(head.project(features), axis=1), 1, atol=1e-5)
    # other parameters, another version
    assert adapt_environment(boxes, embeddings, AdaptationParams(steps=6)).head.version != head.version


def test_auc_counts_ties_half():
    assert auc(np.array([1.0, 2.0]), np.array([0.0])) == 1.0
    assert auc(np.array([0.5]), np.array([0.5])) == 0.5
    assert auc(np.array([0.0]), np.array([1.0, 2.0])) == 0.0


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="held_out_fraction"):
        AdaptationParams(held_out_fraction=1.0)


def _two_walkers():
    """A continuation the geometry allows between two tracklets of cam1 (A ends, B starts 1 s later
    where A was heading); raw appearance says nothing (neutral cosine)."""
    rows = []
    for k in range(14):
        rows.append(("cam1/01/0", 0, k / 7, 0.2 * k))
    for k in range(21, 35):
        rows.append(("cam1/01/1", 1, k / 7, 0.2 * k))
    boxes = pd.DataFrame(rows, columns=["tracklet_id", "track_id", "ts", "map_x"])
    boxes = boxes.assign(camera="cam1", segment="01", map_y=0.0, global_frame=(boxes["ts"] * 7).round().astype(int),
                         x1=100.0, y1=100.0, x2=140.0, y2=200.0)
    raw = np.array([1.0, 0.0])
    tilt = np.array([IdentityConfig().appearance_neutral, np.sqrt(1 - IdentityConfig().appearance_neutral ** 2)])
    embeddings = pd.DataFrame({"tracklet_id": ["cam1/01/0", "cam1/01/1"], "embedding": [raw, tilt]})
    return boxes, embeddings


def test_adapted_evidence_is_off_by_default_and_can_veto_or_weigh_a_join():
    boxes, embeddings = _two_walkers()
    unlike = pd.DataFrame({"tracklet_id": ["cam1/01/0", "cam1/01/1"],
                           "embedding": [np.array([1.0, 0.0]), np.array([-1.0, 0.0])]})
    joined = resolve_global_identities(boxes, embeddings)
    assert joined.assignments["global_id"].nunique() == 1
    # given, but at the default weights: the same answer
    same = resolve_global_identities(boxes, embeddings, adapted=unlike)
    assert same.assignments["global_id"].nunique() == 1
    vetoed = resolve_global_identities(boxes, embeddings, IdentityConfig(adapted_veto=-0.5), adapted=unlike)
    assert vetoed.assignments["global_id"].nunique() == 2
    assert (vetoed.links["kind"] == "cannot_link").all()
    weighed = resolve_global_identities(boxes, embeddings, IdentityConfig(adapted_weight=2.0), adapted=unlike)
    assert weighed.assignments["global_id"].nunique() == 2


def test_adapted_evidence_weighs_covisibility_only_when_asked():
    # one person seen by two cameras at the same spots: geometry joins them
    boxes, embeddings = _two_walkers()
    first = boxes[boxes["tracklet_id"] == "cam1/01/0"]
    boxes = pd.concat([first, first.assign(tracklet_id="cam2/01/0", camera="cam2")], ignore_index=True)
    embeddings = embeddings.assign(tracklet_id=["cam1/01/0", "cam2/01/0"])
    unlike = embeddings.assign(embedding=[np.array([1.0, 0.0]), np.array([-1.0, 0.0])])
    weighed = resolve_global_identities(boxes, embeddings, IdentityConfig(adapted_weight=2.0), adapted=unlike)
    assert weighed.links["kind"].tolist() == ["covisible"]
    assert weighed.assignments["global_id"].nunique() == 1
    config = IdentityConfig(adapted_weight=2.0, adapted_on_covisible=True)
    assert resolve_global_identities(boxes, embeddings, config, adapted=unlike).assignments["global_id"].nunique() == 2


def test_an_environment_without_pairs_gets_an_untrained_head_and_no_verdict():
    boxes = pd.DataFrame({"tracklet_id": ["cam1/01/0"], "camera": ["cam1"], "segment": ["01"], "track_id": [0],
                          "global_frame": [0], "map_x": [0.0], "map_y": [0.0]})
    embeddings = pd.DataFrame({"tracklet_id": ["cam1/01/0"], "embedding": [np.ones(8, np.float32)]})
    result = adapt_environment(boxes, embeddings, AdaptationParams(dim=4))
    assert result.train_positives == result.train_negatives == 0
    assert np.isnan(result.before.auc) and result.before.same_pairs == 0
    assert result.head.project(np.ones((1, 8))).shape == (1, 4)
    empty = adapt_environment(boxes.iloc[:0], embeddings.iloc[:0], AdaptationParams(dim=4))
    assert empty.tracklets == 0
