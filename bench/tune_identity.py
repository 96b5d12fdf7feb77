"""Identity experiments on a pipeline's stored tracklets (the sample environment's ground truth).

The heavy part (decode, detect, track, embed) is read from the lake that ``make demo`` (or
``python -m orchestration.demo --max-source-frames 400``) wrote; only the environment level is
re-run per variant: ``resolve_global_identities`` -> ``clean_environment_tracks`` ->
``map_trajectories`` -> evaluation, a few seconds each. Several lakes can be scored in one run,
so a change is judged on more than one build of the same footage.

    .venv/bin/python bench/tune_identity.py --var var --var /tmp/var400
    .venv/bin/python bench/tune_identity.py --var var --set min_score=0.5 --set cannot_link_m=3
    .venv/bin/python bench/tune_identity.py --var var --cut none:none --cut 2:3   # other tracklet cuts
    .venv/bin/python bench/tune_identity.py --var var --embed 4:112x224          # other crops
    .venv/bin/python bench/tune_identity.py --var var --keep-static --optimal    # phantoms, clustering
    .venv/bin/python bench/tune_identity.py --var var --adapt --variant "adapted_veto=-0.2"  # adaptation
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spoton.analytics import map_trajectories, with_foot_spread
from spoton.perception.appearance import CROPS_PER_TRACKLET, TRACKLET_CROP_SIZE, embed_tracklets
from spoton.environment import FrameClock, sub_video_key
from spoton.evaluation.multi_camera import evaluate_environment
from spoton.ground_truth import load_ground_truth
from spoton.identity.adaptation import AdaptationParams, adapt_environment
from spoton.identity.resolver import IdentityConfig, resolve_global_identities
from spoton.storage.lake import ParquetLake
from spoton.models.embedder import build_embedder
from spoton.identity.phantoms import StaticConfig, resolve_people
from spoton.identity.reentry import ReentryConfig
from spoton.identity.postprocess import OfflineConfig, TrackletCut, clean_environment_tracks
from spoton.sample import ENV_NAME
from spoton.sample.builder import load_sample_environment
from spoton.storage.store import LocalStore
from spoton.video import iter_frames
from spoton.artifacts import cache_dir_from

CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """What the environment level reads, loaded once from one pipeline's lake."""

    name: str
    var: Path
    boxes: pd.DataFrame
    embeddings: pd.DataFrame
    truth: object
    processed: dict[str, np.ndarray]
    clock: FrameClock
    adapted: pd.DataFrame | None = None  # the tracklets' adapted embeddings (spoton.identity.adaptation)
    weighted_fusion: bool = True  # map_trajectories weighs cameras by foot_spread_m, as the pipeline does

    @classmethod
    def load(cls, var: Path, environment: str = ENV_NAME) -> "StoredRun":
        lake = ParquetLake(LocalStore(var / "lake"))
        truth = load_ground_truth(LocalStore(var / "store"), environment)
        if truth is None:
            raise SystemExit(f"{var}: no ground truth in the store (build it with ../shared/pets present)")
        segments = lake.segments("tracklets", environment)
        boxes = lake.read_many("tracklets", environment, segments).to_pandas()
        embeddings = lake.read_many("tracklet_embeddings", environment, segments).to_pandas()
        embeddings["embedding"] = embeddings["embedding"].map(lambda v: np.asarray(v, np.float32))
        frames = lake.read_many("frames", environment, segments).to_pandas()
        processed = {c: truth.frames_of(c, g["global_frame"].to_numpy()) for c, g in frames.groupby("camera")}
        return cls(str(var), var, boxes, embeddings[["tracklet_id", "embedding"]], truth, processed,
                   FrameClock.of(frames["global_frame"], frames["ts"]))

    def recut(self, cut: TrackletCut) -> "StoredRun":
        """The same boxes cut into tracklets anew (as the tracklets asset would with ``cut``) and
        re-embedded from the store's sub-videos."""
        boxes = self.boxes.assign(tracklet_id=cut.tracklet_ids(
            self.boxes["camera"], self.boxes["segment"], self.boxes["track_id"],
            self.boxes["global_frame"].to_numpy() // self.clock.step, self.clock.fps))
        label = f"missed {cut.split_after_missed_frames}, max {cut.max_tracklet_s} s"
        return dataclasses.replace(self, name=f"{self.name} cut: {label}", boxes=boxes).reembed()

    def reembed(self, per_tracklet: int | None = None, crop_size: tuple[int, int] | None = None,
                label: str = "") -> "StoredRun":
        """The stored tracklets embedded anew: ``per_tracklet`` crops each, resized to ``crop_size``
        (w, h); the pipeline's defaults where None."""
        per_tracklet = per_tracklet or CROPS_PER_TRACKLET
        crop_size = crop_size or TRACKLET_CROP_SIZE
        store, embedder, rows = LocalStore(self.var / "store"), build_embedder(crop_size=crop_size, cache_dir=CACHE), []
        for segment, part in self.boxes.groupby("segment"):
            def frames_of(camera: str, stop: int, segment=segment):
                return iter_frames(store.local_path(sub_video_key(ENV_NAME, camera, segment)), stop=stop)
            means, _ = embed_tracklets(part, frames_of, embedder, per_tracklet)
            rows.extend({"tracklet_id": t, "embedding": v} for t, v in means.items())
        name = f"{self.name} {label}" if label else self.name
        return dataclasses.replace(self, name=name, embeddings=pd.DataFrame(rows))

    def reproject(self, axis_feet: bool = True) -> "StoredRun":
        """The stored boxes' map positions taken anew through the committed sample calibration, foot
        points on the person's axis (its ``vertical_vanishing_point``) or, without ``axis_feet``, at
        the box's bottom-centre (what builds before it stored). Detections the tracked region would
        now keep or drop are not replayed: that needs a build."""
        positions = np.full((len(self.boxes), 2), np.nan)
        for camera in load_sample_environment().cameras:
            rows = (self.boxes["camera"] == camera.name).to_numpy()
            spec = camera.spec() if axis_feet else dataclasses.replace(camera.spec(), vertical_vanishing_point=None)
            positions[rows] = spec.map_positions(self.boxes.loc[rows, ["x1", "y1", "x2", "y2"]].to_numpy(np.float64))
        label = "feet on the axis" if axis_feet else "feet at the bottom-centre"
        return dataclasses.replace(self, name=f"{self.name} {label}",
                                   boxes=self.boxes.assign(map_x=positions[:, 0], map_y=positions[:, 1]))

    def adapt(self, params: AdaptationParams = AdaptationParams()) -> "StoredRun":
        """The run with its adapted embeddings, the head trained on its own tracklets as the
        ``appearance_adaptation`` asset does; prints the held-out separation."""
        result = adapt_environment(self.boxes, self.embeddings, params)
        print(f"{self.name}: adaptation held-out AUC {result.before.auc:.3f} -> {result.after.auc:.3f}, "
              f"cosine gap {result.before.gap:.3f} -> {result.after.gap:.3f}", file=sys.stderr)
        return dataclasses.replace(self, adapted=result.head.adapt(self.embeddings))

    def score(self, config: "IdentityConfig | Configs", keep_static: bool = False) -> dict[str, float]:
        """Resolve and score as the pipeline does: static tracks dropped first unless ``keep_static``
        (the resolver alone then: no re-entry joins, fleeting identities kept)."""
        configs = config if isinstance(config, Configs) else Configs(config)
        if keep_static:
            result = resolve_global_identities(self.boxes, self.embeddings, configs.identity, adapted=self.adapted)
        else:
            result, _ = resolve_people(self.boxes, self.embeddings, configs.identity, static=configs.static,
                                       adapted=self.adapted, reentry=configs.reentry)
        return self.score_assignments(result.assignments, configs.offline)

    def score_assignments(self, assignments: pd.DataFrame, offline: OfflineConfig = OfflineConfig()) -> dict[str, float]:
        """Cross-camera and per-camera figures of one tracklet -> global id assignment."""
        boxes = self.boxes.merge(assignments, on="tracklet_id")
        tracks = clean_environment_tracks(boxes, self.clock.step, self.clock.fps, offline)
        located = tracks.dropna(subset=["map_x", "map_y"])
        if self.weighted_fusion:  # the committed sample calibration: the same homographies every build stores
            located = with_foot_spread(located, {c.name: c.spec() for c in load_sample_environment().cameras})
        trajectories = map_trajectories(located)
        evaluation = evaluate_environment(self.truth.cameras, tracks, self.processed, trajectories, self.clock.fps,
                                          online_tracks=self.boxes)
        cross = evaluation.cross_camera
        row = {"xIDF1": 100 * cross.idf1, "xHOTA": 100 * cross.hota, "xMOTA": 100 * cross.mota,
               "IDSW": cross.id_switches, "ids": int(assignments["global_id"].nunique())}
        if "trajectories" in evaluation.map_error:
            row |= {"map p50 m": evaluation.map_error["trajectories"].median_m,
                    "map p90 m": evaluation.map_error["trajectories"].p90_m}
        for camera, metrics in evaluation.per_camera.items():
            row[f"{camera} IDF1"] = 100 * metrics.idf1
        for radius, metrics in evaluation.ground_plane.items():
            row |= {f"floor {radius:g}m MOTA": 100 * metrics.mota, f"floor {radius:g}m IDF1": 100 * metrics.idf1,
                    f"floor {radius:g}m Prec": 100 * metrics.precision, f"floor {radius:g}m HOTA": 100 * metrics.hota}
        return row


@dataclasses.dataclass(frozen=True)
class Configs:
    """One variant of the environment level: the resolver's, re-entry's, the people filter's and the
    final tracks' configs."""

    identity: IdentityConfig = IdentityConfig()
    reentry: ReentryConfig = ReentryConfig()
    static: StaticConfig = StaticConfig()
    offline: OfflineConfig = OfflineConfig()

    @classmethod
    def parse(cls, pairs: list[str]) -> "Configs":
        """``FIELD=VALUE`` pairs: IdentityConfig fields, ``reentry.FIELD`` (ReentryConfig),
        ``static.FIELD`` (StaticConfig) and ``offline.FIELD`` (OfflineConfig, the final tracks)."""
        parts = {"identity": [], "reentry": [], "static": [], "offline": []}
        for pair in pairs:
            prefix, dot, rest = pair.partition(".")
            if dot and prefix in ("reentry", "static", "offline"):
                parts[prefix].append(rest)
            else:
                parts["identity"].append(pair)
        base = cls()
        return cls(*(dataclasses.replace(getattr(base, name), **parse_overrides(parts[name], type(getattr(base, name))))
                     for name in ("identity", "reentry", "static", "offline")))


def parse_overrides(pairs: list[str], kind: type = IdentityConfig) -> dict[str, float]:
    fields = {f.name: f.type for f in dataclasses.fields(kind)}
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in fields:
            raise SystemExit(f"--set {pair}: {kind.__name__} has no field {name!r} (fields: {', '.join(fields)})")
        kind = fields[name]
        out[name] = (None if value == "none" else value.lower() in ("1", "true") if kind in (bool, "bool")
                     else int(value) if kind in (int, "int") else float(value))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var", type=Path, action="append", required=True,
                        help="a SPOTON_VAR folder the pipeline wrote (lake/ and store/); repeat for several builds")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="IdentityConfig overrides for the variant row (repeatable)")
    parser.add_argument("--variant", action="append", default=[], metavar="'FIELD=VALUE ...'",
                        help="one more variant row per use: space-separated IdentityConfig overrides")
    parser.add_argument("--adapt", action="store_true",
                        help="train each build's appearance adaptation head (spoton.identity.adaptation) and give "
                             "the resolver the adapted embeddings (used where a variant sets adapted_*)")
    parser.add_argument("--embed", action="append", default=[], metavar="CROPS:WxH",
                        help="also re-embed the stored tracklets with CROPS crops each, resized to W x H px "
                             "(e.g. 8:112x224); repeatable")
    parser.add_argument("--optimal", action="store_true",
                        help="also score the optimal clustering (correlation clustering MILP) as a variant")
    parser.add_argument("--keep-static", action="store_true",
                        help="also score each variant with static tracks kept (the pipeline drops them, spoton.identity.phantoms)")
    parser.add_argument("--cut", action="append", default=[], metavar="MISSED:MAX_S",
                        help="also re-cut the stored tracks into tracklets (after MISSED missed frames, every "
                             "MAX_S seconds; 'none' for either switches it off) and re-embed them; repeatable")
    args = parser.parse_args()
    runs = [StoredRun.load(var) for var in args.var]
    for cut in args.cut:
        missed, _, max_s = cut.partition(":")
        tracklet_cut = TrackletCut(None if missed == "none" else int(missed),
                                   None if max_s in ("", "none") else float(max_s))
        runs += [run.recut(tracklet_cut) for run in runs[:len(args.var)]]
    for spec in args.embed:
        crops, _, size = spec.partition(":")
        width, _, height = size.partition("x")
        runs += [run.reembed(int(crops), (int(width), int(height)), f"embed: {spec}") for run in runs[:len(args.var)]]
    if args.adapt:
        runs = [run.adapt() for run in runs]
    variants = {"default": Configs()}
    if args.optimal:
        variants["clustering=optimal"] = Configs(IdentityConfig(clustering="optimal"))
    if args.set:
        variants[" ".join(args.set)] = Configs.parse(args.set)
    for spec in args.variant:
        variants[spec] = Configs.parse(spec.split())
    rows = []
    for label, config in variants.items():
        for keep_static in (False, True) if args.keep_static else (False,):
            for run in runs:
                started = time.perf_counter()
                row = run.score(config, keep_static)
                rows.append({"variant": label + (" static kept" if keep_static else ""), "build": run.name, **row,
                             "s": time.perf_counter() - started})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".1f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
