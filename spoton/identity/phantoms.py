"""Static phantoms: things a person detector keeps seeing as a person (a bollard, a stone), found
from the evidence of an identity's whole life and removed before the final identities.

A person who stands still still sways: the foot point wanders by tens of centimetres and the box
changes height as they shift weight, turn or gesture; and people who wait somewhere walk there
and away. An object does none of this. The test is made on identities, not on tracker tracks: a
track that holds only the minutes someone waited (the tracker restarts at each segment) looks as
still as a bollard, but its identity, joined by geometry and appearance to the walk before and
after, does not. An identity is static when, over at least ``min_duration_s``, 90% of its map
positions lie within ``max_spread_m`` of their median and its tracks' box heights vary by less
than ``max_height_cv`` (standard deviation over mean, the median over its tracks).

:func:`resolve_people` resolves identities, drops the static ones' tracklets and clusters the rest
again (so the objects neither get an identity nor take part in anyone's cannot-links).

Two more kinds of identity are not people and get no identity at the end: *fleeting* ones, seen
for less than ``min_identity_s`` in every camera (a glimpse: the final camera tracks drop anything
under 2 s anyway, so this only stops them being counted), and *weak* ones, with fewer than
``min_boxes_per_s`` boxes (all cameras) per second of their life: on the sample these are boxes
drawn around two people walking together, a box every few frames chained over 10-16 s through
three cameras (1.4-2.1 boxes a second, where every person seen in the annotated frames has 10.9 or
more); they were 72 of the 122 floor positions matching nobody on the 400-frame build at 0.20.

A *shadow* identity lives in another's place: at ``min_shadow_share`` or more of its instants
another identity stands within ``shadow_m``, and it holds a box at fewer than ``min_shadow_fill``
of the processed instants from its first box to its last. A person walking beside someone is
detected about as steadily as they are (on the sample every annotated person's identity fills 75%
or more of its span, the two who walk together 99-100%); a box that comes and goes in someone's
place is a box drawn around two people or a part of one, the detector alternating between it and
the people's own boxes (400-frame build at 0.22: 62 boxes over 16.7 s around persons 11 and 12,
filling 53%, all of its 62 floor positions matching nobody; demo build at 0.18: the same pair,
32%). Sparse identities alone (a hard view) are not shadows: someone must stand in their place.

Resolution is *core first*: tracklets of at least ``min_core_boxes`` boxes are resolved on their own,
and shorter pieces join the resulting identities afterwards (those identities enter as must-links)
where no cannot-link forbids it. A 4-box stray piece (a duplicate box at a tracker's hand-over)
joined early to a person carried a same-camera cannot-link that refused every link between the two
halves of that person's walk (demo build at 0.25: cross-camera IDF1 84.4 -> 89.3).
On the sample environment (docs/benchmarks.md) static identities sit at 0.02-0.22 m of spread over
7.9-40 s; a person who waits ~9 s at one spot (a static-looking track of the 400-frame build)
belongs to an identity spreading over 3 m. Boxes without map positions are never judged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spoton.identity.reentry import ReentryConfig, dense_ids, join_reentries
from spoton.identity.resolver import IdentityConfig, IdentityResult, gather_evidence, resolve_evidence

TRACK_KEY = ["camera", "segment", "track_id"]


@dataclass(frozen=True)
class StaticConfig:
    """Thresholds of the static-phantom test, of the fleeting and weak identities and of the core-first
    resolution (see the module docstring)."""

    min_duration_s: float = 5.0
    max_spread_m: float = 0.3
    max_height_cv: float = 0.06
    min_identity_s: float = 1.5  # fleeting: shorter than this in every camera (camera_tracks keeps >= 2 s)
    min_boxes_per_s: float = 3.0  # weak: fewer boxes (all cameras) per second of its life (0: off)
    min_core_boxes: int = 5  # tracklets with fewer boxes join only after the others are resolved (0: off)
    shadow_m: float = 1.0  # shadow: another identity this close (map metres) ...
    min_shadow_share: float = 0.9  # ... at this share of its instants or more ...
    min_shadow_fill: float = 0.6  # ... and a box at fewer of the instants of its span than this (0: off)

    def __post_init__(self):
        if min(self.min_duration_s, self.max_spread_m, self.max_height_cv, self.min_identity_s, self.shadow_m,
               self.min_shadow_share) <= 0 or self.min_boxes_per_s < 0 or not 0 <= self.min_shadow_fill <= 1:
            raise ValueError(f"StaticConfig thresholds must be positive (min_shadow_fill within 0..1), got {self}")


def motion(boxes: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Per ``key`` group of located boxes: duration_s, spread_m (90th percentile of the map
    positions' distance to their median), height_cv (box height std / mean), median x_m, y_m."""
    located = boxes.dropna(subset=["map_x", "map_y"])
    if located.empty:
        return pd.DataFrame(columns=key + ["duration_s", "spread_m", "height_cv", "x_m", "y_m"])
    located = located.assign(height=located["y2"] - located["y1"])
    stats = located.groupby(key, sort=True).agg(
        t0=("ts", "min"), t1=("ts", "max"), x_m=("map_x", "median"), y_m=("map_y", "median"),
        h_mean=("height", "mean"), h_std=("height", "std")).reset_index()
    centred = located.merge(stats[key + ["x_m", "y_m"]], on=key)
    distance = np.hypot(centred["map_x"] - centred["x_m"], centred["map_y"] - centred["y_m"])
    spread = distance.groupby([centred[k] for k in key]).quantile(0.9).rename("spread_m").reset_index()
    stats = stats.merge(spread, on=key)
    stats["duration_s"] = stats["t1"] - stats["t0"]
    stats["height_cv"] = (stats["h_std"] / stats["h_mean"]).fillna(0.0)
    return stats[key + ["duration_s", "spread_m", "height_cv", "x_m", "y_m"]]


def static_identities(boxes: pd.DataFrame, config: StaticConfig = StaticConfig()) -> pd.DataFrame:
    """The identities (``global_id`` of ``boxes``) judged static objects, with their figures; the
    box-shape figure is the median over each identity's tracks (cameras see different sizes)."""
    identities = motion(boxes, ["global_id"]).drop(columns="height_cv")
    shape = motion(boxes, ["global_id"] + TRACK_KEY).groupby("global_id")["height_cv"].median()
    identities = identities.merge(shape.reset_index(), on="global_id")
    static = ((identities["duration_s"] >= config.min_duration_s) & (identities["spread_m"] <= config.max_spread_m)
              & (identities["height_cv"] <= config.max_height_cv))
    return identities[static].reset_index(drop=True)


def fleeting_identities(boxes: pd.DataFrame, min_identity_s: float, min_boxes_per_s: float = 0.0) -> np.ndarray:
    """The ``global_id`` values of ``boxes`` seen for less than ``min_identity_s`` in every camera
    (first to last box): too short to be anyone the final camera tracks show; and those with fewer
    than ``min_boxes_per_s`` boxes (all cameras together) per second from their first box to their
    last: too weak to be a person (a person in view fills most frames of at least one camera)."""
    if boxes.empty:
        return np.zeros(0, np.int64)
    span = boxes.groupby(["global_id", "camera"])["ts"].agg(lambda t: t.max() - t.min()).groupby("global_id").max()
    life = boxes.groupby("global_id")["ts"].agg(["size", "min", "max"])
    rate = life["size"] / np.maximum(life["max"] - life["min"], 1e-9)
    return span.index[(span < min_identity_s).to_numpy() | (rate.reindex(span.index) < min_boxes_per_s).to_numpy()].to_numpy()


def shadow_identities(boxes: pd.DataFrame, shadow_m: float, min_share: float, min_fill: float) -> np.ndarray:
    """The ``global_id`` values of ``boxes`` (located rows with ``global_frame``) that live in another
    identity's shadow (see the module docstring): at ``min_share`` or more of their instants another
    identity is within ``shadow_m`` metres, and they hold a box at fewer than ``min_fill`` of the
    processed instants (the grid of ``global_frame`` values of ``boxes``) from their first to their last."""
    located = boxes.dropna(subset=["map_x", "map_y"])
    if located.empty or min_fill <= 0:
        return np.zeros(0, np.int64)
    instants = located.groupby(["global_id", "global_frame"], as_index=False).agg(
        x=("map_x", "median"), y=("map_y", "median"))
    grid = np.unique(instants["global_frame"].to_numpy())
    life = instants.groupby("global_id")["global_frame"].agg(["size", "min", "max"])
    span = np.searchsorted(grid, life["max"], side="right") - np.searchsorted(grid, life["min"])
    sparse = life.index[(life["size"] / span).to_numpy() < min_fill]
    if not len(sparse):
        return np.zeros(0, np.int64)
    pairs = instants[instants["global_id"].isin(sparse)].merge(instants, on="global_frame", suffixes=("", "_other"))
    pairs = pairs[(pairs["global_id"] != pairs["global_id_other"])
                  & (np.hypot(pairs["x"] - pairs["x_other"], pairs["y"] - pairs["y_other"]) <= shadow_m)]
    shadowed = pairs.groupby(["global_id", "global_id_other"])["global_frame"].nunique().groupby("global_id").max()
    share = shadowed / life["size"].reindex(shadowed.index)
    return share.index[(share >= min_share).to_numpy()].to_numpy(np.int64)


def resolve_people(boxes: pd.DataFrame, embeddings: pd.DataFrame, config: IdentityConfig = IdentityConfig(),
                   must_link=(), static: StaticConfig = StaticConfig(),
                   adapted: pd.DataFrame | None = None,
                   reentry: ReentryConfig = ReentryConfig()) -> tuple[IdentityResult, pd.DataFrame]:
    """Global identities of the people in ``boxes`` (tracklet rows), resolved core first: static
    identities' tracklets are left out of the second resolution and of its assignments; identities
    of one person coming back after a long gap are joined where ``reentry`` is enabled
    (:mod:`spoton.identity.reentry`, on the adapted appearance where given, else the raw one); fleeting,
    weak and shadow identities are left out. Returns the result and the static identities found in the
    first pass (their figures and ``tracklets``)."""
    must_link = list(must_link)
    sizes = boxes.groupby("tracklet_id")["ts"].size()
    core = boxes[boxes["tracklet_id"].isin(sizes.index[sizes >= static.min_core_boxes])]
    core = core if len(core) else boxes
    # every link depends on its two tracklets only: gather once, then resolve subsets of it
    evidence = gather_evidence(boxes, embeddings, config, adapted)
    core_evidence = evidence.without(set(boxes["tracklet_id"]) - set(core["tracklet_id"]))
    first = resolve_evidence(core_evidence, config, must_link)
    labelled = core.merge(first.assignments, on="tracklet_id")
    found = static_identities(labelled, static)
    found = found.assign(tracklets=found["global_id"].map(
        labelled.groupby("global_id")["tracklet_id"].unique().map(sorted)) if len(found) else pd.Series(dtype=object))
    dropped = set(np.concatenate(found["tracklets"].to_numpy())) if len(found) else set()
    people = boxes[~boxes["tracklet_id"].isin(dropped)]
    # the objects neither get an identity nor take part in anyone's cannot-links: resolve again without them
    settled = resolve_evidence(core_evidence.without(dropped), config, must_link) if dropped else first
    if len(core) == len(boxes):
        second = settled
    else:  # the core's identities are kept whole (must-links); short pieces join them where nothing forbids it
        ids = settled.assignments.sort_values(["global_id", "tracklet_id"])
        chains = [(a, b) for _, group in ids.groupby("global_id")["tracklet_id"]
                  for a, b in zip(group, group.iloc[1:])]
        second = resolve_evidence(evidence.without(dropped), config, must_link + chains)
    appearance = adapted if adapted is not None and len(adapted) else embeddings
    joined = join_reentries(people, second.assignments, appearance, reentry)
    assignments = joined.assignments
    fleeting = fleeting_identities(people.merge(assignments, on="tracklet_id"), static.min_identity_s,
                                   static.min_boxes_per_s)
    assignments = assignments[~assignments["global_id"].isin(fleeting)]
    shadows = shadow_identities(people.merge(assignments, on="tracklet_id"), static.shadow_m,
                                static.min_shadow_share, static.min_shadow_fill)
    assignments = dense_ids(people, assignments[~assignments["global_id"].isin(shadows)])
    diagnostics = dict(second.diagnostics, identities=int(assignments["global_id"].nunique()),
                       reentry_joins=len(joined.joins), fleeting_dropped=len(fleeting), shadows_dropped=len(shadows))
    return IdentityResult(assignments, second.links, diagnostics), found
