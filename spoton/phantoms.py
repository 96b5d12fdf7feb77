"""Static phantoms: things a person detector keeps seeing as a person (a bollard, a stone), found
from the evidence of a tracker track's whole life and removed before identities are resolved.

A person who stands still still sways: the foot point wanders by tens of centimetres and the box
changes height as they shift weight, turn or gesture; over several seconds of someone walking the
foot point moves metres. An object does neither. A track (one tracker id in one camera and
segment) is static when, over at least ``min_duration_s``, 90% of its map positions lie within
``max_spread_m`` of their median and its box height varies by less than ``max_height_cv``
(standard deviation over mean). Shorter tracks of the same camera whose positions all stay within
``max_spread_m`` and whose median lies within ``anchor_radius_m`` of a static track's are the same
object picked up again (after a missed detection or at a segment start) and go with it.

On the sample environment (docs/benchmarks.md) the static tracks sit at 0.02-0.22 m of spread over
6.6-28 s; the stillest real person's track of more than 4 s spreads over 0.4 m.
Tracks without map positions are never judged (kept).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TRACK_KEY = ["camera", "segment", "track_id"]


@dataclass(frozen=True)
class StaticConfig:
    """Thresholds of the static-phantom test (see the module docstring)."""

    min_duration_s: float = 5.0
    max_spread_m: float = 0.3
    max_height_cv: float = 0.06
    anchor_radius_m: float = 0.5

    def __post_init__(self):
        if min(self.min_duration_s, self.max_spread_m, self.max_height_cv, self.anchor_radius_m) <= 0:
            raise ValueError(f"StaticConfig thresholds must be positive, got {self}")


def track_motion(boxes: pd.DataFrame) -> pd.DataFrame:
    """Per track (camera, segment, track_id): duration_s, spread_m (90th percentile of the map
    positions' distance to their median), height_cv, and the median map position."""
    located = boxes.dropna(subset=["map_x", "map_y"])
    if located.empty:
        return pd.DataFrame(columns=TRACK_KEY + ["duration_s", "spread_m", "height_cv", "x_m", "y_m"])
    located = located.assign(height=located["y2"] - located["y1"])
    grouped = located.groupby(TRACK_KEY, sort=True)
    stats = grouped.agg(t0=("ts", "min"), t1=("ts", "max"), x_m=("map_x", "median"), y_m=("map_y", "median"),
                        h_mean=("height", "mean"), h_std=("height", "std")).reset_index()
    with_median = located.merge(stats[TRACK_KEY + ["x_m", "y_m"]], on=TRACK_KEY)
    distance = np.hypot(with_median["map_x"] - with_median["x_m"], with_median["map_y"] - with_median["y_m"])
    spread = distance.groupby([with_median[k] for k in TRACK_KEY]).quantile(0.9).rename("spread_m").reset_index()
    stats = stats.merge(spread, on=TRACK_KEY)
    stats["duration_s"] = stats["t1"] - stats["t0"]
    stats["height_cv"] = (stats["h_std"] / stats["h_mean"]).fillna(0.0)
    return stats[TRACK_KEY + ["duration_s", "spread_m", "height_cv", "x_m", "y_m"]]


def static_tracks(boxes: pd.DataFrame, config: StaticConfig = StaticConfig()) -> pd.DataFrame:
    """The tracks judged static objects (rows of :func:`track_motion`), long ones and their pick-ups."""
    motion = track_motion(boxes)
    still = motion["spread_m"] <= config.max_spread_m
    static = still & (motion["duration_s"] >= config.min_duration_s) & (motion["height_cv"] <= config.max_height_cv)
    anchors = motion[static]
    picked_up = np.zeros(len(motion), bool)
    for camera, group in anchors.groupby("camera"):
        here = (motion["camera"] == camera).to_numpy() & still.to_numpy() & ~static.to_numpy()
        if not here.any():
            continue
        distance = np.hypot(motion["x_m"].to_numpy()[here, None] - group["x_m"].to_numpy()[None, :],
                            motion["y_m"].to_numpy()[here, None] - group["y_m"].to_numpy()[None, :])
        picked_up[np.flatnonzero(here)[(distance <= config.anchor_radius_m).any(axis=1)]] = True
    return motion[static.to_numpy() | picked_up].reset_index(drop=True)


def drop_static(boxes: pd.DataFrame, config: StaticConfig = StaticConfig()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``boxes`` without the rows of static tracks, and those tracks (for the record)."""
    static = static_tracks(boxes, config)
    if static.empty:
        return boxes, static
    key = pd.MultiIndex.from_frame(boxes[TRACK_KEY].astype({"track_id": static["track_id"].dtype}))
    drop = key.isin(pd.MultiIndex.from_frame(static[TRACK_KEY]))
    return boxes[~drop], static
