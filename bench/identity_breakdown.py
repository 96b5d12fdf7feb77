"""What the global identities are (issue 19): each identity of a stored pipeline run matched to the
ground-truth people by the majority of its boxes, and the surplus ones sorted by cause.

Every box of the stored tracklets is matched to a ground-truth box of its camera and frame
(Hungarian, IoU >= 0.5); a tracklet's / identity's person is the majority of its matched boxes.
Per identity (as ``bench/tune_identity.py`` resolves it, static objects dropped):

- ``person``: the identity holding most of a person's matched boxes (one per person);
- ``split, co-visible``: another identity of the same person seen at the same time as one of its
  other identities (two cameras, or two tracks, of one person not joined);
- ``split, gap <= G s`` / ``split, gap > G s``: another identity of the same person, seen only
  before or after the others, the gap to the nearest one up to / over ``G`` (``max_gap_s``: over it,
  the resolver cannot join them: the person left the view and came back);
- ``junk``: fewer than half of its boxes in annotated frames match a person (partial boxes,
  reflections, boxes on two people, objects);
- ``unannotated``: no box in an annotated frame.

    .venv/bin/python bench/identity_breakdown.py --var /tmp/grid/demo_s0.20 --var /tmp/grid/demo_s0.18
    .venv/bin/python bench/identity_breakdown.py --var /tmp/grid/demo_s0.20 --set max_gap_s=20 --list
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_identity import Configs, StoredRun  # noqa: E402  (a sibling bench script)

from spoton.identity.phantoms import motion, resolve_people  # noqa: E402

MIN_IOU = 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def match_people(run: StoredRun, boxes: pd.DataFrame | None = None) -> pd.Series:
    """Per box row of ``boxes`` (default: the run's): the ground-truth person it matches (IoU >=
    0.5, one box per person and frame), -1 where none does, NaN outside annotated frames."""
    boxes = run.boxes if boxes is None else boxes
    person = pd.Series(np.nan, index=boxes.index)
    for camera, rows in boxes.groupby("camera"):
        truth = run.truth.cameras.get(camera)
        annotated = run.processed.get(camera, np.zeros(0, np.int64))
        if truth is None:
            continue
        rows = rows[rows["global_frame"].isin(annotated)]
        person.loc[rows.index] = -1
        by_frame = {f: np.flatnonzero(truth.frame == f) for f in np.unique(truth.frame)}
        for frame, group in rows.groupby("global_frame"):
            gt = by_frame.get(frame)
            if gt is None or not len(gt):
                continue
            iou = _iou(group[["x1", "y1", "x2", "y2"]].to_numpy(np.float64), truth.xyxy[gt])
            r, c = linear_sum_assignment(-iou)
            ok = iou[r, c] >= MIN_IOU
            person.loc[group.index[r[ok]]] = truth.ids[gt[c[ok]]]
    return person


def breakdown(run: StoredRun, configs: Configs) -> pd.DataFrame:
    """One row per global identity: its person, cause, size and figures."""
    result, _ = resolve_people(run.boxes, run.embeddings, configs.identity, static=configs.static,
                               adapted=run.adapted, reentry=configs.reentry)
    boxes = run.boxes.merge(result.assignments, on="tracklet_id")
    boxes["person"] = match_people(run, boxes).to_numpy()
    rows = []
    for gid, group in boxes.groupby("global_id"):
        annotated = group["person"].dropna()
        matched = annotated[annotated >= 0]
        person = int(matched.mode().iloc[0]) if len(matched) else -1
        rows.append(dict(global_id=gid, person=person, boxes=len(group), annotated=len(annotated),
                         matched=int((matched == person).sum()), t0=group["ts"].min(), t1=group["ts"].max(),
                         cameras="".join(sorted(c[-1] for c in group["camera"].unique())),
                         tracklets=group["tracklet_id"].nunique()))
    table = pd.DataFrame(rows)
    # the share of its best camera's frames (first to last box) that hold a box of the identity
    fill = boxes.groupby(["global_id", "camera"]).agg(n=("ts", "size"), t0=("ts", "min"), t1=("ts", "max"))
    fill = (fill["n"] / ((fill["t1"] - fill["t0"]) * run.clock.fps / run.clock.step + 1)).groupby("global_id").max()
    table["fill"] = table["global_id"].map(fill)
    table["duration_s"] = table["t1"] - table["t0"]
    table["boxes_per_s"] = table["boxes"] / np.maximum(table["duration_s"], 1e-9)
    table = table.merge(motion(boxes, ["global_id"])[["global_id", "spread_m"]], on="global_id", how="left")
    table["cause"] = [_cause(row, table, configs.identity.max_gap_s) for row in table.itertuples()]
    return table


def _cause(row, table: pd.DataFrame, max_gap_s: float) -> str:
    if row.annotated == 0:
        return "unannotated"
    if row.person < 0 or row.matched < 0.5 * row.annotated:
        return "junk"
    same = table[(table["person"] == row.person) & (table["annotated"] > 0)
                 & (table["matched"] >= 0.5 * table["annotated"])]
    if row.global_id == same.sort_values("matched", ascending=False)["global_id"].iloc[0]:
        return "person"
    others = same[same["global_id"] != row.global_id]
    if ((others["t0"] <= row.t1) & (others["t1"] >= row.t0)).any():
        return "split, co-visible"
    gap = np.minimum(np.abs(others["t0"] - row.t1), np.abs(row.t0 - others["t1"])).min()
    return f"split, gap <= {max_gap_s:g} s" if gap <= max_gap_s else f"split, gap > {max_gap_s:g} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var", type=Path, action="append", required=True, help="a built cell (SPOTON_VAR folder)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="IdentityConfig overrides")
    parser.add_argument("--list", action="store_true", help="also print every identity")
    args = parser.parse_args()
    configs = Configs.parse(args.set)
    summary = []
    for var in args.var:
        run = StoredRun.load(var)
        table = breakdown(run, configs)
        people = sorted({p for c in run.truth.cameras.values() for p in np.unique(c.ids)})
        found = set(table.loc[table["cause"] == "person", "person"])
        counts = table["cause"].value_counts()
        summary.append({"cell": var.name, "ids": len(table), "gt people": len(people),
                        "people found": len(found), **counts.to_dict()})
        if args.list:
            print(f"\n{var}\n")
            print(table.sort_values(["person", "t0"]).to_markdown(index=False, floatfmt=".2f"))
    print(pd.DataFrame(summary).fillna(0).to_markdown(index=False, floatfmt=".0f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
