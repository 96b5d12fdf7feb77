"""Honest evaluation grid (issue 19): the pipeline built at each detector score threshold, for both
builds of the sample environment, every cell scored the same way; defaults are judged by their
worst cell, not their best.

Each cell is one pipeline build (``python -m orchestration.demo [--max-source-frames 400]`` with
``SPOTON_SCORE_THRESHOLD``) in ``ROOT/<build>_s<threshold>``; a build is reused when its folder holds
``grid_build.txt`` (written when it succeeded), else made with ``--build`` (one at a time, niced:
~1.5 min for the 400-frame build and ~4 min for the demo's on an idle 2-core machine, much longer
on a loaded one) or skipped. Scoring re-runs the environment level on the stored tracklets
(``bench/tune_identity.py``'s ``StoredRun``): cross-camera IDF1 / HOTA / MOTA, global ids, the fused
trajectories' map error, the floor within 1 m (MOTA / IDF1 / precision / HOTA over the distance
similarity).

    .venv/bin/python bench/identity_grid.py --root /tmp/grid --build
    .venv/bin/python bench/identity_grid.py --root /tmp/grid --grid 400:0.18,0.2 --grid demo:0.2
    .venv/bin/python bench/identity_grid.py --root /tmp/grid --adapt --variant "adapted_weight=1 adapted_neutral=0.3"
    .venv/bin/python bench/identity_grid.py --root /tmp/grid --feet axis   # builds older than the feet on the axis
    .venv/bin/python bench/identity_grid.py --root /tmp/grid --feet bottom --fusion median   # as before both
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_identity import Configs, StoredRun  # noqa: E402  (a sibling bench script)

REPO = Path(__file__).resolve().parents[1]
BUILDS = {"400": ["--max-source-frames", "400"], "demo": []}
DEFAULT_GRID = ["400:0.18,0.2,0.22,0.25", "demo:0.18,0.2,0.25"]
COLUMNS = ["xIDF1", "xHOTA", "xMOTA", "IDSW", "ids", "map p50 m", "map p90 m",
           "floor 1m MOTA", "floor 1m IDF1", "floor 1m Prec", "floor 1m HOTA"]
WORST = {"xIDF1": "min", "xHOTA": "min", "xMOTA": "min", "ids": "max", "map p50 m": "max", "map p90 m": "max",
         "floor 1m MOTA": "min", "floor 1m IDF1": "min", "floor 1m Prec": "min", "floor 1m HOTA": "min"}


def cell_dir(root: Path, build: str, threshold: float) -> Path:
    return root / f"{build}_s{threshold:.2f}"


def ensure_build(root: Path, build: str, threshold: float, make: bool) -> Path | None:
    """The cell's var folder, built first when ``make`` and not there yet; None when absent."""
    var = cell_dir(root, build, threshold)
    if (var / "grid_build.txt").exists():
        return var
    if not make:
        print(f"{var}: not built (run with --build)", file=sys.stderr)
        return None
    env = dict(os.environ, SPOTON_VAR=str(var), SPOTON_SCORE_THRESHOLD=str(threshold), PYTHONPATH=str(REPO))
    started = time.perf_counter()
    log = var.parent / f"{var.name}.log"  # with_suffix would give every threshold one file
    var.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        done = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "orchestration.demo", *BUILDS[build]],
                              cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        print(f"{var}: build failed (exit {done.returncode}), see {log}", file=sys.stderr)
        return None
    (var / "grid_build.txt").write_text(f"{build} {threshold} {time.perf_counter() - started:.0f} s\n")
    return var


def parse_grid(specs: list[str]) -> list[tuple[str, float]]:
    cells = []
    for spec in specs:
        build, _, thresholds = spec.partition(":")
        if build not in BUILDS or not thresholds:
            raise SystemExit(f"--grid {spec!r}: use BUILD:T1,T2 with BUILD one of {sorted(BUILDS)}")
        cells += [(build, float(t)) for t in thresholds.split(",")]
    return cells


def floatfmt(table: pd.DataFrame) -> tuple[str, ...]:
    """Two decimals, three for the map error (metres: the targets sit at 0.15 / 0.30 m)."""
    return tuple(".3f" if column.startswith("map ") else ".2f" for column in table.columns)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="folder of the cells' builds (<build>_s<threshold>)")
    parser.add_argument("--grid", action="append", metavar="BUILD:T1,T2",
                        help=f"cells to score (repeatable; default {' '.join(DEFAULT_GRID)})")
    parser.add_argument("--build", action="store_true", help="build the cells that are not there yet")
    parser.add_argument("--adapt", action="store_true",
                        help="train each cell's appearance adaptation head and give it to the resolver")
    parser.add_argument("--feet", choices=("stored", "axis", "bottom"), default="stored",
                        help="map positions: as the build stored them, or taken anew from the stored boxes through "
                             "the committed calibration with foot points on the person's axis (vertical vanishing "
                             "point) or at the box's bottom-centre")
    parser.add_argument("--fusion", choices=("weighted", "median"), default="weighted",
                        help="map_trajectories' fusion of the cameras: weighted by each box's foot_spread_m through "
                             "the committed sample calibration (the pipeline's), or the plain median (before it)")
    parser.add_argument("--variant", action="append", default=[], metavar="'FIELD=VALUE ...'",
                        help="one more variant per use: space-separated FIELD=VALUE of IdentityConfig, "
                             "reentry.FIELD (ReentryConfig), static.FIELD (StaticConfig), offline.FIELD (OfflineConfig)")
    args = parser.parse_args()
    variants = {"default": Configs()}
    for spec in args.variant:
        variants[spec] = Configs.parse(spec.split())
    rows = []
    for build, threshold in parse_grid(args.grid or DEFAULT_GRID):
        var = ensure_build(args.root, build, threshold, args.build)
        if var is None:
            continue
        run = StoredRun.load(var)
        if args.feet != "stored":
            run = run.reproject(axis_feet=args.feet == "axis")
        run = dataclasses.replace(run, weighted_fusion=args.fusion == "weighted")
        if args.adapt:
            run = run.adapt()
        for label, config in variants.items():
            row = run.score(config)
            rows.append({"variant": label, "build": build, "score >=": threshold, **{c: row.get(c) for c in COLUMNS}})
            print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                  file=sys.stderr, flush=True)
    if not rows:
        print("no cell was scored", file=sys.stderr)
        return 1
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=floatfmt(table)))
    worst = table.groupby("variant", sort=False).agg({c: how for c, how in WORST.items()})
    worst.insert(0, "cells", table.groupby("variant", sort=False).size())
    print("\nworst cell per variant (each column on its own: min of rates, max of ids and map error)\n")
    print(worst.reset_index().to_markdown(index=False, floatfmt=floatfmt(worst.reset_index())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
