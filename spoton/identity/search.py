"""Search people by appearance: a FAISS index over tracklet embeddings, answers per global identity.

Tracklet embeddings are unit vectors (``tracklet_embeddings.embedding``), so inner product is
cosine similarity and an exact ``IndexFlatIP`` is enough for thousands of tracklets. A query is
one tracklet's vector; the answer ranks identities by their best-matching tracklet, leaving out
the query's own tracklet.
"""
from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class IdentityMatch:
    global_id: int
    score: float  # cosine similarity of the identity's closest tracklet to the query
    tracklet_id: str  # that closest tracklet


class TrackletIndex:
    """Exact cosine search over tracklet embeddings, mapped to global identities."""

    def __init__(self, embeddings: pd.DataFrame, identities: pd.DataFrame):
        """``embeddings``: tracklet_id, embedding (vectors); ``identities``: tracklet_id, global_id."""
        known = embeddings.merge(identities[["tracklet_id", "global_id"]], on="tracklet_id", how="inner")
        if known.empty:
            raise ValueError("no tracklet has both an embedding and a global id: materialize "
                             "tracklet_embeddings and global_identities for this environment first")
        vectors = np.stack([np.asarray(v, np.float32) for v in known["embedding"]])
        if not np.all(np.isfinite(vectors)):
            raise ValueError("tracklet embeddings contain NaN/inf: re-materialize tracklet_embeddings")
        faiss.normalize_L2(vectors)
        self.tracklet_ids = known["tracklet_id"].astype(str).to_numpy()
        self.global_ids = known["global_id"].astype(np.int64).to_numpy()
        self.vectors = vectors
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def __len__(self) -> int:
        return self.index.ntotal

    def vector_of(self, tracklet_id: str) -> np.ndarray:
        hits = np.flatnonzero(self.tracklet_ids == tracklet_id)
        if not len(hits):
            raise KeyError(f"tracklet {tracklet_id!r} has no embedding in the index")
        return self.vectors[hits[0]]

    def nearest_identities(self, tracklet_id: str, k: int = 5,
                           exclude_own_identity: bool = False) -> list[IdentityMatch]:
        """The ``k`` identities closest to ``tracklet_id``'s appearance, best first."""
        query = self.vector_of(tracklet_id)[None, :]
        scores, rows = self.index.search(query, len(self))
        own = self.global_ids[self.tracklet_ids == tracklet_id][0]
        matches: dict[int, IdentityMatch] = {}
        for score, row in zip(scores[0], rows[0]):
            tracklet, gid = str(self.tracklet_ids[row]), int(self.global_ids[row])
            if row < 0 or tracklet == tracklet_id or gid in matches or (exclude_own_identity and gid == own):
                continue
            matches[gid] = IdentityMatch(gid, float(score), tracklet)
            if len(matches) == k:
                break
        return list(matches.values())
