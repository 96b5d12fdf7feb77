"""Person search on the sample's ground truth: raw tracklet embeddings against the environment's
adapted ones (issue 19 item 1: search should use the adapted features only if they help).

Tracklets are labelled with the ground-truth person of the majority of their boxes
(``bench/identity_breakdown.py``'s matching, IoU >= 0.5; unlabelled tracklets are left out). Each
labelled tracklet queries every other labelled tracklet of *another tracker track* (pieces of its
own track would be found trivially), ranked by cosine as ``spoton.identity.search.TrackletIndex``
ranks them: top-1 / top-5 hit rate and mean average precision, over all such tracklets and over
those of other cameras only. The adapted head is trained on the cell's own tracklets, no labels
(``StoredRun.adapt``, as the ``appearance_adaptation`` asset does).

    .venv/bin/python bench/search_quality.py --var /tmp/grid/400_s0.20 --var /tmp/grid/demo_s0.20
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity_breakdown import match_people  # noqa: E402  (sibling bench scripts)
from tune_identity import StoredRun  # noqa: E402


def tracklet_people(run: StoredRun) -> pd.DataFrame:
    """tracklet_id, camera, track (camera/segment/track_id), person (majority of matched boxes)."""
    boxes = run.boxes.assign(person=match_people(run).to_numpy())
    boxes = boxes[boxes["person"] >= 0]
    return (boxes.groupby("tracklet_id").agg(camera=("camera", "first"), segment=("segment", "first"),
                                             track_id=("track_id", "first"),
                                             person=("person", lambda p: int(p.mode().iloc[0])))
            .reset_index().assign(track=lambda t: t["camera"] + "/" + t["segment"] + "/" + t["track_id"].astype(str)))


def retrieval(labels: pd.DataFrame, embeddings: pd.DataFrame, cross_camera: bool) -> dict[str, float]:
    table = labels.merge(embeddings, on="tracklet_id")
    x = np.stack([np.asarray(v, np.float64) for v in table["embedding"]])
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = x @ x.T
    person, track, camera = (table[c].to_numpy() for c in ("person", "track", "camera"))
    top1, top5, aps = [], [], []
    for q in range(len(table)):
        allowed = track != track[q]
        if cross_camera:
            allowed &= camera != camera[q]
        relevant = (person == person[q]) & allowed
        if not relevant.any():
            continue
        order = np.flatnonzero(allowed)[np.argsort(-similarity[q, allowed], kind="stable")]
        hits = relevant[order]
        top1.append(hits[0])
        top5.append(hits[:5].any())
        ranks = np.flatnonzero(hits) + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    return {"queries": len(aps), "top-1": 100 * np.mean(top1), "top-5": 100 * np.mean(top5), "mAP": 100 * np.mean(aps)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var", type=Path, action="append", required=True, help="a built cell (SPOTON_VAR folder)")
    args = parser.parse_args()
    rows = []
    for var in args.var:
        run = StoredRun.load(var)
        labels = tracklet_people(run)
        adapted = run.adapt().adapted
        for features, embeddings in (("raw", run.embeddings), ("adapted", adapted)):
            for cross in (False, True):
                rows.append({"cell": var.name, "features": features, "gallery": "other cameras" if cross else "all",
                             **retrieval(labels, embeddings, cross)})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".1f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
