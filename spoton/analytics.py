"""Floor-plan analytics from boxes that carry a global id: trajectories, heatmaps, occupancy, dwell.

Every function takes and returns pandas frames in map metres and environment-clock seconds, so
the batch assets, the review app and notebooks share one definition of each number. Inside, the
group-bys and windows run in polars, which measured faster than the pandas code it replaced
(``bench/analytics_speed.py``, docs/benchmarks.md).

Time accounting is the same everywhere: a trajectory sample stands for the time until the same
identity's next sample (its *step*). A step longer than ``max_step_s`` is a gap in which the
person was unseen, so that sample weighs the typical step (the median over all identities)
instead; so does each identity's last sample. A person seen for 10 s at 7 fps thus accounts for
10 person-seconds, whether or not there are gaps elsewhere.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import cv2
import numpy as np
import pandas as pd
import polars as pl

from spoton.geometry import Zone
from spoton.storage.schemas import DWELL, MAP_TRAJECTORIES, OCCUPANCY

if TYPE_CHECKING:
    from spoton.perception.processor import CameraSpec


def map_trajectories(boxes: pd.DataFrame, *, bucket_s: float = 1 / 7, smooth_window_s: float = 1.0,
                     max_gap_s: float = 1.0) -> pd.DataFrame:
    """One smoothed floor position per identity per time bucket.

    1. Fuse: boxes of one identity in one bucket (``round(ts / bucket_s)``, so cameras whose
       clocks differ by under half a bucket land together) become their median position, and
       ``n_cameras`` counts the cameras that saw it. Where ``boxes`` has ``foot_spread_m`` (the
       scale of each position's error, :meth:`spoton.perception.processor.CameraSpec.foot_spread_m`)
       the median is weighted by its inverse square: a far or small view's position counts less
       (rows without one weigh the median weight).
    2. Smooth: a least-squares line through the samples of a centred window of
       ``smooth_window_s`` (Savitzky-Golay of order 1 that tolerates missing buckets), evaluated
       at the sample's own time. It does not lag on straight walks, not even at the ends of a run,
       and never reaches across a gap longer than ``max_gap_s``.
    3. ``speed_mps`` is the slope of that fit; NaN where the window holds a single sample.
    """
    weighted = "foot_spread_m" in boxes
    columns = ["global_id", "ts", "map_x", "map_y", "camera"] + (["foot_spread_m"] if weighted else [])
    frame = pl.from_pandas(boxes[columns], nan_to_null=True).drop_nulls(["global_id", "map_x", "map_y"])
    if frame.is_empty():
        return MAP_TRAJECTORIES.empty_frame()
    if weighted:
        weight = pl.when(pl.col("foot_spread_m") > 0).then(1.0 / pl.col("foot_spread_m") ** 2)
        frame = frame.with_columns(weight=weight).with_columns(pl.col("weight").fill_null(pl.col("weight").median()))
        position = {axis: _weighted_median(axis, "weight") for axis in ("map_x", "map_y")}
    else:
        position = {axis: pl.col(axis).median() for axis in ("map_x", "map_y")}
    fused = (frame.group_by(pl.col("global_id").cast(pl.Int64),
                            (pl.col("ts") / bucket_s).round(0, mode="half_to_even").cast(pl.Int64).alias("bucket"))
             .agg(pl.col("ts").mean(), **position,
                  n_cameras=pl.col("camera").drop_nulls().n_unique().cast(pl.Int64))
             .sort("global_id", "bucket"))
    new_run = (pl.col("global_id").diff() != 0) | (pl.col("bucket").diff() * bucket_s > max_gap_s)
    fused = fused.with_columns(run=new_run.fill_null(True).cum_sum())

    # every bucket of every run, observed or not, so a row count window is a time window
    grid = (fused.group_by("run").agg(bucket=pl.int_range(pl.col("bucket").min(), pl.col("bucket").max() + 1))
            .explode("bucket").join(fused, on=["run", "bucket"], how="left").sort("run", "bucket"))
    window = 2 * max(0, int(round((smooth_window_s / bucket_s - 1) / 2))) + 1  # odd, in buckets

    def window_sum(values: pl.Expr) -> pl.Expr:
        return values.rolling_sum(window, center=True, min_samples=1).over("run")

    grid = grid.with_columns(t=pl.col("ts") - pl.col("ts").min().over("run")).with_columns(  # t null where unobserved
        n=window_sum(pl.col("map_x").is_not_null().cast(pl.Float64)), st=window_sum(pl.col("t")),
        stt=window_sum(pl.col("t") * pl.col("t")), sx=window_sum(pl.col("map_x")), sy=window_sum(pl.col("map_y")),
        stx=window_sum(pl.col("t") * pl.col("map_x")), sty=window_sum(pl.col("t") * pl.col("map_y")))
    grid = grid.filter(pl.col("map_x").is_not_null())
    n, st, stt, t = pl.col("n"), pl.col("st"), pl.col("stt"), pl.col("t")
    denominator = n * stt - st * st
    fitted = {}
    for axis in ("x", "y"):
        slope = pl.when(denominator > 1e-9).then((n * pl.col(f"st{axis}") - st * pl.col(f"s{axis}")) / denominator)
        fitted[f"map_{axis}"] = pl.col(f"s{axis}") / n + slope.fill_null(0.0) * (t - st / n)
        fitted[f"v{axis}"] = slope
    out = grid.select("global_id", "ts", **fitted, n_cameras="n_cameras").to_pandas()
    speed = np.hypot(out.pop("vx").to_numpy(), out.pop("vy").to_numpy())
    return out.assign(speed_mps=speed)[MAP_TRAJECTORIES.names]


def with_foot_spread(boxes: pd.DataFrame, cameras: Mapping[str, "CameraSpec"]) -> pd.DataFrame:
    """``boxes`` (camera, x1..y2) with ``foot_spread_m`` from their camera's calibration, which
    :func:`map_trajectories` weighs cameras by; NaN for a camera not in ``cameras``."""
    spread = np.full(len(boxes), np.nan)
    cameras_of_rows = boxes["camera"].to_numpy()
    for name, spec in cameras.items():
        rows = cameras_of_rows == name
        if rows.any():
            spread[rows] = spec.foot_spread_m(boxes.loc[rows, ["x1", "y1", "x2", "y2"]].to_numpy(np.float64))
    return boxes.assign(foot_spread_m=spread)


def _weighted_median(value: str, weight: str) -> pl.Expr:
    """The weighted median of a group's ``value`` (midpoint rule: equal weights give the plain median)."""
    ordered = pl.col(weight).sort_by(value)
    share = ordered.cum_sum() / pl.col(weight).sum()
    values = pl.col(value).sort_by(value)
    return (values.filter(share >= 0.5 - 1e-12).first() + values.filter(share > 0.5 + 1e-12).first()) / 2


def sample_seconds(trajectories: pd.DataFrame, *, max_step_s: float = 1.0) -> np.ndarray:
    """Seconds each trajectory sample stands for (see the module docstring), in row order."""
    gid, ts = trajectories["global_id"].to_numpy(), trajectories["ts"].to_numpy(np.float64)
    order = np.lexsort((ts, gid))
    step = np.full(len(ts), np.inf)
    same = gid[order][1:] == gid[order][:-1]
    step[order[:-1][same]] = np.diff(ts[order])[same]
    valid = (step > 0) & (step <= max_step_s)
    typical = float(np.median(step[valid])) if valid.any() else 0.0
    return np.where(valid, step, typical)


def heatmap(trajectories: pd.DataFrame, *, extent_m: tuple[float, float, float, float],
            cell_m: float = 0.5, max_step_s: float = 1.0) -> pd.DataFrame:
    """Person-seconds and distinct people per grid cell of ``extent_m`` = (xmin, ymin, xmax, ymax).

    Only visited cells are listed; samples outside the extent are dropped.
    """
    xmin, ymin, _, _ = extent_m
    cells = pl.DataFrame(visited_cells(trajectories, extent_m, cell_m, max_step_s))
    return (cells.group_by("cell_ix", "cell_iy")
            .agg(pl.col("seconds").sum(), people=pl.col("global_id").n_unique().cast(pl.Int64))
            .sort("cell_ix", "cell_iy")
            .select("cell_ix", "cell_iy", x_m=xmin + (pl.col("cell_ix") + 0.5) * cell_m,
                    y_m=ymin + (pl.col("cell_iy") + 0.5) * cell_m, seconds="seconds", people="people")
            .to_pandas())


def visited_cells(trajectories: pd.DataFrame, extent_m: tuple[float, float, float, float], cell_m: float,
                  max_step_s: float) -> dict[str, np.ndarray]:
    """The grid cell (``cell_ix``, ``cell_iy``), ``seconds`` and ``global_id`` of every sample
    inside ``extent_m``, as columns."""
    xmin, ymin, _, _ = extent_m
    nx, ny = _grid_shape(extent_m, cell_m)
    ix = np.floor((trajectories["map_x"].to_numpy() - xmin) / cell_m)
    iy = np.floor((trajectories["map_y"].to_numpy() - ymin) / cell_m)
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    return {"cell_ix": ix[inside].astype(np.int64), "cell_iy": iy[inside].astype(np.int64),
            "seconds": sample_seconds(trajectories, max_step_s=max_step_s)[inside],
            "global_id": trajectories["global_id"].to_numpy(np.int64)[inside]}


def _grid_shape(extent_m: tuple[float, float, float, float], cell_m: float) -> tuple[int, int]:
    xmin, ymin, xmax, ymax = extent_m
    if xmax <= xmin or ymax <= ymin or cell_m <= 0:
        raise ValueError(f"extent_m must be (xmin, ymin, xmax, ymax) with max > min and cell_m > 0, "
                         f"got {extent_m} and {cell_m}")
    return int(np.ceil((xmax - xmin) / cell_m - 1e-9)), int(np.ceil((ymax - ymin) / cell_m - 1e-9))


def heatmap_image(heatmap_df: pd.DataFrame, extent_m: tuple[float, float, float, float],
                  cell_m: float, floor_plan_png: bytes | None = None, *, value: str = "seconds",
                  width_px: int = 800, y_up: bool = False) -> bytes:
    """PNG of the heatmap: a colour map (turbo: blue = little, red = most) over the floor plan,
    with a legend on the right.

    Orientation: by default the image's top-left corner is (xmin, ymin) and map y grows
    *downwards*, the convention of a floor-plan image whose pixels were scaled to metres; with
    ``y_up`` the top-left is (xmin, ymax) and y grows upwards (a plan drawn like a map, as the
    sample environment's ``FloorPlan``). The floor plan, if given, must span exactly ``extent_m``;
    it is stretched to the grid's aspect ratio. Unvisited cells stay transparent, so the plan
    shows through.
    """
    nx, ny = _grid_shape(extent_m, cell_m)
    grid = np.zeros((ny, nx), dtype=np.float64)
    grid[heatmap_df["cell_iy"].to_numpy(), heatmap_df["cell_ix"].to_numpy()] = heatmap_df[value]
    if y_up:
        grid = grid[::-1]
    height_px = max(1, round(width_px * ny / nx))
    if floor_plan_png is None:
        base = np.full((height_px, width_px, 3), 235, np.uint8)
    else:
        plan = cv2.imdecode(np.frombuffer(floor_plan_png, np.uint8), cv2.IMREAD_COLOR)
        if plan is None:
            raise ValueError("floor_plan_png is not a decodable image: pass a PNG or JPEG file's bytes")
        base = cv2.resize(plan, (width_px, height_px), interpolation=cv2.INTER_AREA)
    rows, cols = np.arange(height_px) * ny // height_px, np.arange(width_px) * nx // width_px
    pixels = grid[np.ix_(rows, cols)]  # nearest cell for every pixel
    peak = colour_scale_max(grid)
    scaled = np.round(255 * np.clip(pixels / peak, 0, 1) if peak > 0 else pixels).astype(np.uint8)
    blended = cv2.addWeighted(cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO), 0.7, base, 0.3, 0)
    image = np.where(pixels[..., None] > 0, blended, base)
    return _png(np.hstack([image, _legend(height_px, peak, value)]))


def colour_scale_max(values: np.ndarray, percentile: float = 98.0) -> float:
    """Top of a heatmap's colour scale: a high percentile of the visited cells, not their maximum,
    so one cell where someone stood still (or a box that never moved) does not wash out the rest;
    cells above it saturate."""
    values = np.asarray(values, dtype=np.float64)
    visited = values[values > 0]
    return float(np.percentile(visited, percentile)) if len(visited) else 0.0


def _legend(height_px: int, peak: float, value: str) -> np.ndarray:
    """A vertical colour bar (high at the top) labelled with the scale's ends."""
    panel = np.full((height_px, 110, 3), 255, np.uint8)
    top, bottom = 24, max(height_px - 24, 25)
    ramp = np.linspace(255, 0, bottom - top).astype(np.uint8)[:, None].repeat(20, axis=1)
    panel[top:bottom, 10:30] = cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    label = ">= " + (f"{peak:.0f}" if peak >= 10 else f"{peak:.1f}")
    cv2.putText(panel, label, (34, top + 10), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.putText(panel, "0", (34, bottom), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.putText(panel, value, (8, 16), font, 0.45, black, 1, cv2.LINE_AA)
    return panel


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode the heatmap as PNG")
    return encoded.tobytes()


def occupancy(trajectories: pd.DataFrame, zones: list[Zone], *, bucket_s: float = 10.0,
              max_step_s: float = 1.0) -> pd.DataFrame:
    """Per zone and time bucket: distinct ids present (``people``) and the time-averaged count
    (``mean_people`` = person-seconds in the zone / ``bucket_s``).

    Buckets are aligned to multiples of ``bucket_s`` on the environment clock and cover the whole
    span of the trajectories, empty buckets included (zeros), for every zone.
    """
    if trajectories.empty or not zones:
        return OCCUPANCY.empty_frame()
    bucket = np.floor(trajectories["ts"].to_numpy() / bucket_s).astype(np.int64)
    zone, row = _zone_rows(trajectories[["map_x", "map_y"]].to_numpy(), zones)
    present = pl.DataFrame({"zone": zone, "bucket": bucket[row],
                            "global_id": trajectories["global_id"].to_numpy(np.int64)[row],
                            "seconds": sample_seconds(trajectories, max_step_s=max_step_s)[row]})
    stats = present.group_by("zone", "bucket").agg(people=pl.col("global_id").n_unique().cast(pl.Int64),
                                                    seconds=pl.col("seconds").sum())
    all_buckets = np.arange(bucket.min(), bucket.max() + 1)
    every = pl.DataFrame({"zone": np.repeat(np.arange(len(zones)), len(all_buckets)),
                          "bucket": np.tile(all_buckets, len(zones))})
    out = (every.join(stats, on=["zone", "bucket"], how="left", maintain_order="left")
           .select(zone=_zone_name(zones),
                   t_start=pl.col("bucket") * float(bucket_s), t_end=(pl.col("bucket") + 1) * float(bucket_s),
                   people=pl.col("people").fill_null(0), mean_people=pl.col("seconds").fill_null(0.0) / bucket_s))
    return out.to_pandas()


def _zone_rows(xy: np.ndarray, zones: list[Zone]) -> tuple[np.ndarray, np.ndarray]:
    """(zone index, row index) of every trajectory sample inside a zone, zone by zone."""
    rows = [np.flatnonzero(zone.contains(xy)) for zone in zones]
    return np.repeat(np.arange(len(zones)), [len(r) for r in rows]), np.concatenate(rows)


def _zone_name(zones: list[Zone]) -> pl.Expr:
    """The name of the zone whose index is in column ``zone``."""
    return pl.col("zone").replace_strict(range(len(zones)), [z.name for z in zones], return_dtype=pl.String)


def dwell(trajectories: pd.DataFrame, zones: list[Zone], *, max_gap_s: float = 2.0,
          max_step_s: float = 1.0) -> pd.DataFrame:
    """Visits of identities to zones: ``enter_ts`` is the first sample inside, ``exit_ts`` the last
    one plus its step, ``seconds`` = exit - enter. A visit ends at the first sample outside the
    zone or when the identity goes unseen for more than ``max_gap_s``."""
    if trajectories.empty or not zones:
        return DWELL.empty_frame()
    gid, ts = trajectories["global_id"].to_numpy(np.int64), trajectories["ts"].to_numpy(np.float64)
    order = np.lexsort((ts, gid))
    gid, ts = gid[order], ts[order]
    end = ts + sample_seconds(trajectories, max_step_s=max_step_s)[order]
    continues = np.r_[False, (gid[1:] == gid[:-1]) & (np.diff(ts) <= max_gap_s)]
    zone, row = _zone_rows(trajectories[["map_x", "map_y"]].to_numpy()[order], zones)
    stays = np.r_[False, (zone[1:] == zone[:-1]) & (row[1:] == row[:-1] + 1)] & continues[row]
    samples = pl.DataFrame({"visit": np.cumsum(~stays), "zone": zone, "global_id": gid[row], "ts": ts[row],
                            "end": end[row]})
    visits = samples.group_by("visit", maintain_order=True).agg(
        pl.col("global_id").first(), pl.col("zone").first(), enter_ts=pl.col("ts").first(),
        exit_ts=pl.col("end").last())
    return (visits.select("global_id", zone=_zone_name(zones), enter_ts="enter_ts", exit_ts="exit_ts",
                          seconds=pl.col("exit_ts") - pl.col("enter_ts"))
            .sort("global_id", "enter_ts", "zone", maintain_order=True).to_pandas())
