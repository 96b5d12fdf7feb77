"""Search by appearance: FAISS answers equal brute-force cosine ranking, grouped per identity."""
import numpy as np
import pandas as pd
import pytest

from spoton.identity.search import TrackletIndex


def gallery(seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 64))
    rows, ids = [], []
    for person, centre in enumerate(centres, start=1):
        for k in range(3):
            rows.append({"tracklet_id": f"cam{k + 1}/01/{person}", "embedding": centre + 0.3 * rng.normal(size=64)})
            ids.append({"tracklet_id": f"cam{k + 1}/01/{person}", "global_id": person})
    return pd.DataFrame(rows), pd.DataFrame(ids)


def test_nearest_identities_match_brute_force_cosine():
    embeddings, identities = gallery()
    index = TrackletIndex(embeddings, identities)
    matches = index.nearest_identities("cam1/01/2", k=4)
    vectors = np.stack(embeddings["embedding"])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = vectors @ vectors[embeddings.index[embeddings["tracklet_id"] == "cam1/01/2"][0]]
    expected = {}
    for tracklet, gid, score in sorted(zip(embeddings["tracklet_id"], identities["global_id"], cosine),
                                       key=lambda r: -r[2]):
        if tracklet != "cam1/01/2" and gid not in expected:
            expected[gid] = (tracklet, score)
    assert [m.global_id for m in matches] == list(expected)[:4]
    assert matches[0].global_id == 2, "the person's other tracklets are the best match"
    for match in matches:
        assert match.tracklet_id == expected[match.global_id][0]
        assert match.score == pytest.approx(expected[match.global_id][1], abs=1e-5)
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_own_identity_can_be_excluded():
    index = TrackletIndex(*gallery())
    assert 3 not in [m.global_id for m in index.nearest_identities("cam2/01/3", k=3, exclude_own_identity=True)]


def test_unknown_tracklet_and_empty_inputs_are_explained():
    embeddings, identities = gallery()
    with pytest.raises(KeyError, match="cam7/01/1"):
        TrackletIndex(embeddings, identities).nearest_identities("cam7/01/1")
    with pytest.raises(ValueError, match="materialize tracklet_embeddings and global_identities"):
        TrackletIndex(embeddings, identities.iloc[0:0])
