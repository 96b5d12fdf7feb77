"""Floor-plan analytics from boxes that carry a global id: trajectories, heatmaps, occupancy, dwell.

Every function takes and returns pandas frames in map metres and environment-clock seconds, so
the batch assets, the review app and notebooks share one definition of each number.

Time accounting is the same everywhere: a trajectory sample stands for the time until the same
identity's next sample (its *step*). A step longer than ``max_step_s`` is a gap in which the
person was unseen, so that sample weighs the typical step (the median over all identities)
instead; so does each identity's last sample. A person seen for 10 s at 7 fps thus accounts for
10 person-seconds, whether or not there are gaps elsewhere.
"""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from spoton.geometry import Zone
from spoton.schemas import DWELL, MAP_TRAJECTORIES, OCCUPANCY


def map_trajectories(boxes: pd.DataFrame, *, bucket_s: float = 1 / 7, smooth_window_s: float = 1.0,
                     max_gap_s: float = 1.0) -> pd.DataFrame:
    """One smoothed floor position per identity per time bucket.

    1. Fuse: boxes of one identity in one bucket (``round(ts / bucket_s)``, so cameras whose
       clocks differ by under half a bucket land together) become their median position, and
       ``n_cameras`` counts the cameras that saw it.
    2. Smooth: a least-squares line through the samples of a centred window of
       ``smooth_window_s`` (Savitzky-Golay of order 1 that tolerates missing buckets), evaluated
       at the sample's own time. It does not lag on straight walks, not even at the ends of a run,
       and never reaches across a gap longer than ``max_gap_s``.
    3. ``speed_mps`` is the slope of that fit; NaN where the window holds a single sample.
    """
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
    xmin, ymin, xmax, ymax = extent_m
    nx, ny = _grid_shape(extent_m, cell_m)
    ix = np.floor((trajectories["map_x"].to_numpy() - xmin) / cell_m)
    iy = np.floor((trajectories["map_y"].to_numpy() - ymin) / cell_m)
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    cells = pd.DataFrame({"cell_ix": ix[inside].astype(np.int64), "cell_iy": iy[inside].astype(np.int64),
                          "seconds": sample_seconds(trajectories, max_step_s=max_step_s)[inside],
                          "global_id": trajectories["global_id"].to_numpy()[inside]})
    out = (cells.groupby(["cell_ix", "cell_iy"], sort=True)
           .agg(seconds=("seconds", "sum"), people=("global_id", "nunique")).reset_index())
    out.insert(2, "x_m", xmin + (out["cell_ix"] + 0.5) * cell_m)
    out.insert(3, "y_m", ymin + (out["cell_iy"] + 0.5) * cell_m)
    return out


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


def dwell(trajectories: pd.DataFrame, zones: list[Zone], *, max_gap_s: float = 2.0,
          max_step_s: float = 1.0) -> pd.DataFrame:
    """Visits of identities to zones: ``enter_ts`` is the first sample inside, ``exit_ts`` the last
    one plus its step, ``seconds`` = exit - enter. A visit ends at the first sample outside the
    zone or when the identity goes unseen for more than ``max_gap_s``."""
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
