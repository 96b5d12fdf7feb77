"""The floor-plan analytics over a built lake: today's polars code (spoton.analytics) against the
pandas code it replaced (kept below as the baseline: renamed, sharing only the unchanged numpy
helpers), step by step, in one run.

    .venv/bin/python bench/analytics_speed.py [VAR] [--repeats 15] [--scale 1]

VAR is a deployment folder built by ``python -m orchestration.demo`` (default ``var``). Each step
runs on the lake's own inputs: fusion + smoothing on ``camera_tracks`` (as the ``map_trajectories``
asset calls it), heatmap / occupancy / dwell on the resulting trajectories with the environment's
floor plan and zones. Before timing, the bench asserts both implementations return equal tables
(same columns, dtypes and row order; floats within 1e-9). ``--scale N`` repeats the identities N
times (new global ids, same walks) to see how each step grows. Prints a Markdown table of medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spoton import analytics
from spoton.analytics import sample_seconds, visited_cells
from spoton.geometry import Zone
from spoton.sample import ENV_NAME
from spoton.storage.schemas import DWELL, MAP_TRAJECTORIES, OCCUPANCY
from spoton.site.storage import load_environment
from spoton.storage.store import LocalStore

HEATMAP_CELL_M = 0.5  # as assets/analytics.py
OCCUPANCY_BUCKET_S = 10.0


def pandas_map_trajectories(boxes: pd.DataFrame, *, bucket_s: float = 1 / 7, smooth_window_s: float = 1.0,
                            max_gap_s: float = 1.0) -> pd.DataFrame:
    """The pandas ``map_trajectories`` before polars."""
    frame = boxes.dropna(subset=["global_id", "map_x", "map_y"])
    if frame.empty:
        return MAP_TRAJECTORIES.empty_frame()
    frame = frame.assign(bucket=np.round(frame["ts"].to_numpy() / bucket_s).astype(np.int64),
                         global_id=frame["global_id"].astype(np.int64))
    fused = (frame.groupby(["global_id", "bucket"], sort=True)
             .agg(ts=("ts", "mean"), map_x=("map_x", "median"), map_y=("map_y", "median"),
                  n_cameras=("camera", "nunique"))
             .reset_index())
    gid, bucket = fused["global_id"].to_numpy(), fused["bucket"].to_numpy()
    new_run = np.r_[True, (gid[1:] != gid[:-1]) | (np.diff(bucket) * bucket_s > max_gap_s)]
    fused["run"] = np.cumsum(new_run)

    # every bucket of every run, observed or not, so a row count window is a time window
    first = fused.groupby("run")["bucket"].agg(["min", "max"])
    lengths = (first["max"] - first["min"] + 1).to_numpy()
    grid = pd.DataFrame({"run": np.repeat(first.index.to_numpy(), lengths),
                         "bucket": np.repeat(first["min"].to_numpy(), lengths)
                         + np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)})
    grid = grid.merge(fused, on=["run", "bucket"], how="left")
    t = grid["ts"] - grid.groupby("run")["ts"].transform("min")  # NaN where unobserved
    observed = grid["map_x"].notna()
    window = 2 * max(0, int(round((smooth_window_s / bucket_s - 1) / 2))) + 1  # odd, in buckets
    sums = pd.DataFrame({"n": observed.astype(float), "t": t, "tt": t * t,
                         "x": grid["map_x"], "y": grid["map_y"], "tx": t * grid["map_x"],
                         "ty": t * grid["map_y"]})
    sums = (sums.groupby(grid["run"]).rolling(window, center=True, min_periods=1).sum()
            .reset_index(level=0, drop=True).sort_index())
    n, st, stt = sums["n"], sums["t"], sums["tt"]
    denominator = n * stt - st * st
    fitted = {}
    for axis in ("x", "y"):
        slope = ((n * sums[f"t{axis}"] - st * sums[axis]) / denominator).where(denominator > 1e-9)
        mean = sums[axis] / n
        fitted[axis] = mean + slope.fillna(0.0) * (t - st / n)
        fitted[f"v{axis}"] = slope
    out = pd.DataFrame({"global_id": grid["global_id"], "ts": grid["ts"], "map_x": fitted["x"],
                        "map_y": fitted["y"], "n_cameras": grid["n_cameras"],
                        "speed_mps": np.hypot(fitted["vx"], fitted["vy"])})[observed]
    return out.astype({"global_id": np.int64, "n_cameras": np.int64}).reset_index(drop=True)


def pandas_heatmap(trajectories: pd.DataFrame, *, extent_m: tuple[float, float, float, float],
                   cell_m: float = 0.5, max_step_s: float = 1.0) -> pd.DataFrame:
    """The pandas ``heatmap`` before polars."""
    xmin, ymin, _, _ = extent_m
    cells = pd.DataFrame(visited_cells(trajectories, extent_m, cell_m, max_step_s))
    out = (cells.groupby(["cell_ix", "cell_iy"], sort=True)
           .agg(seconds=("seconds", "sum"), people=("global_id", "nunique")).reset_index())
    out.insert(2, "x_m", xmin + (out["cell_ix"] + 0.5) * cell_m)
    out.insert(3, "y_m", ymin + (out["cell_iy"] + 0.5) * cell_m)
    return out


def pandas_occupancy(trajectories: pd.DataFrame, zones: list[Zone], *, bucket_s: float = 10.0,
                     max_step_s: float = 1.0) -> pd.DataFrame:
    """The pandas ``occupancy`` before polars."""
    if trajectories.empty or not zones:
        return OCCUPANCY.empty_frame()
    ts = trajectories["ts"].to_numpy()
    bucket = np.floor(ts / bucket_s).astype(np.int64)
    seconds = sample_seconds(trajectories, max_step_s=max_step_s)
    xy = trajectories[["map_x", "map_y"]].to_numpy()
    gid = trajectories["global_id"].to_numpy()
    all_buckets = np.arange(bucket.min(), bucket.max() + 1)
    frames = []
    for zone in zones:
        inside = zone.contains(xy)
        present = pd.DataFrame({"bucket": bucket[inside], "global_id": gid[inside],
                                "seconds": seconds[inside]})
        stats = (present.groupby("bucket")
                 .agg(people=("global_id", "nunique"), seconds=("seconds", "sum"))
                 .reindex(all_buckets, fill_value=0))
        frames.append(pd.DataFrame({"zone": zone.name, "t_start": all_buckets * float(bucket_s),
                                    "t_end": (all_buckets + 1) * float(bucket_s),
                                    "people": stats["people"].to_numpy(np.int64),
                                    "mean_people": stats["seconds"].to_numpy(np.float64) / bucket_s}))
    return pd.concat(frames, ignore_index=True)[OCCUPANCY.names]


def pandas_dwell(trajectories: pd.DataFrame, zones: list[Zone], *, max_gap_s: float = 2.0,
                 max_step_s: float = 1.0) -> pd.DataFrame:
    """The pandas ``dwell`` before polars."""
    if trajectories.empty or not zones:
        return DWELL.empty_frame()
    trajectories = trajectories.sort_values(["global_id", "ts"], kind="mergesort")
    gid, ts = trajectories["global_id"].to_numpy(), trajectories["ts"].to_numpy()
    step = sample_seconds(trajectories, max_step_s=max_step_s)
    xy = trajectories[["map_x", "map_y"]].to_numpy()
    continues = np.r_[False, (gid[1:] == gid[:-1]) & (np.diff(ts) <= max_gap_s)]
    frames = []
    for zone in zones:
        inside = zone.contains(xy)
        starts = inside & ~(continues & np.r_[False, inside[:-1]])
        visit = np.cumsum(starts)[inside]
        samples = pd.DataFrame({"visit": visit, "global_id": gid[inside], "ts": ts[inside],
                                "end": ts[inside] + step[inside]})
        visits = samples.groupby("visit").agg(global_id=("global_id", "first"), enter_ts=("ts", "first"),
                                              exit_ts=("end", "last"))
        frames.append(visits.assign(zone=zone.name, seconds=visits["exit_ts"] - visits["enter_ts"]))
    out = pd.concat(frames, ignore_index=True)[DWELL.names]
    return out.sort_values(["global_id", "enter_ts", "zone"], kind="mergesort", ignore_index=True)


def read_lake_table(lake: Path, table: str) -> pd.DataFrame:
    files = sorted((lake / table).rglob("*.parquet"))
    if not files:
        raise SystemExit(f"no {table} table under {lake}: build the lake first "
                         "(SPOTON_VAR=... python -m orchestration.demo)")
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pandas()


def scaled(camera_tracks: pd.DataFrame, scale: int) -> pd.DataFrame:
    """The identities repeated ``scale`` times under new global ids."""
    offset = int(camera_tracks["global_id"].max()) + 1
    return pd.concat([camera_tracks.assign(global_id=camera_tracks["global_id"] + k * offset) for k in range(scale)],
                     ignore_index=True)


def median_ms(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("var", nargs="?", type=Path, default=Path("var"))
    parser.add_argument("--environment", default=ENV_NAME)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args()
    env = load_environment(LocalStore(args.var / "store"), args.environment)
    boxes = scaled(read_lake_table(args.var / "lake", "camera_tracks"), args.scale).dropna(subset=["map_x", "map_y"])
    trajectories = pandas_map_trajectories(boxes)
    extent, zones = env.floor_plan.bounds_m, list(env.zones)
    steps = {
        "fusion + smoothing (map_trajectories)": (lambda: pandas_map_trajectories(boxes),
                                                  lambda: analytics.map_trajectories(boxes)),
        "heatmap grid": (lambda: pandas_heatmap(trajectories, extent_m=extent, cell_m=HEATMAP_CELL_M),
                         lambda: analytics.heatmap(trajectories, extent_m=extent, cell_m=HEATMAP_CELL_M)),
        "occupancy": (lambda: pandas_occupancy(trajectories, zones, bucket_s=OCCUPANCY_BUCKET_S),
                      lambda: analytics.occupancy(trajectories, zones, bucket_s=OCCUPANCY_BUCKET_S)),
        "dwell": (lambda: pandas_dwell(trajectories, zones), lambda: analytics.dwell(trajectories, zones)),
    }
    for name, (baseline, today) in steps.items():
        expected, got = baseline(), today()
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9, obj=name)
    print(f"\n{len(boxes)} boxes, {boxes['global_id'].nunique()} identities -> {len(trajectories)} trajectory samples, "
          f"{len(zones)} zones; {os.cpu_count()} cores, {args.repeats} repeats, outputs equal within 1e-9\n")
    print("| step | pandas ms | polars ms | pandas / polars |\n|---|---:|---:|---:|")
    for name, (baseline, today) in steps.items():
        before, after = median_ms(baseline, args.repeats), median_ms(today, args.repeats)
        print(f"| {name} | {before:.2f} | {after:.2f} | {before / after:.2f} |")


if __name__ == "__main__":
    main()
