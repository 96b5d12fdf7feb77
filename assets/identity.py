"""Environment level: cross-camera, cross-segment global identities and map trajectories."""

import numpy as np
import pandas as pd
import pyarrow as pa
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetIn,
                     MetadataValue, Output, asset)

from assets.partitions import ALL_SEGMENTS_OF_ENVIRONMENT, ENVIRONMENTS
from assets.ingest import StoreResource
from spoton.analytics import map_trajectories as fuse_and_smooth, with_foot_spread
from spoton.environment import FrameClock
from spoton.storage.lake import ParquetLake
from spoton.identity.overrides import apply_overrides, read_overrides
from spoton.identity.phantoms import resolve_people
from spoton.identity.postprocess import clean_environment_tracks
from spoton.site.storage import load_environment
from spoton.storage.schemas import CAMERA_TRACKS, GLOBAL_IDENTITIES, MAP_TRAJECTORIES

MAX_CROSS_CAMERA_DISAGREEMENT_M = 1.0
ALL_SEGMENTS = dict(partition_mapping=ALL_SEGMENTS_OF_ENVIRONMENT)


def cross_camera_agreement(boxes: pd.DataFrame) -> tuple[float, int]:
    """Median distance (m) between the map positions two cameras give one identity at one instant,
    over every such pair of boxes (each pair once)."""
    located = boxes.dropna(subset=["map_x", "map_y"])[["global_id", "global_frame", "camera", "map_x", "map_y"]]
    pairs = located.merge(located, on=["global_id", "global_frame"])
    pairs = pairs[pairs["camera_x"] < pairs["camera_y"]]
    distances = np.hypot(pairs["map_x_x"] - pairs["map_x_y"], pairs["map_y_x"] - pairs["map_y_y"])
    return (float(np.median(distances)) if len(distances) else float("nan")), len(distances)


@asset(partitions_def=ENVIRONMENTS, group_name="identity", io_manager_key="lake_io_manager",
       ins={"tracklets": AssetIn(**ALL_SEGMENTS), "tracklet_embeddings": AssetIn(**ALL_SEGMENTS)},
       check_specs=[AssetCheckSpec("cross_camera_agreement", asset="global_identities")])
def global_identities(context: AssetExecutionContext, tracklets: pa.Table, tracklet_embeddings: pa.Table):
    """One global id per real person, across cameras and segment boundaries (see spoton.identity.resolver)."""
    boxes = tracklets.to_pandas()
    embeddings = tracklet_embeddings.select(["tracklet_id", "embedding"]).to_pandas()
    embeddings["embedding"] = embeddings["embedding"].map(lambda v: np.asarray(v, np.float32))
    # static objects tracked as people (a bollard, a stone) get no identity: their tracklets stop here
    result, static = resolve_people(boxes, embeddings)
    # analysts' corrections (identity_overrides in the lake, written by the review app) win over the resolver
    lake = ParquetLake(context.resources.lake_io_manager.store.get_store())
    corrected = apply_overrides(result.assignments, read_overrides(lake, context.partition_key))
    summary = (boxes.groupby(["tracklet_id", "camera", "segment"], as_index=False)
               .agg(start_ts=("ts", "min"), end_ts=("ts", "max"), n_boxes=("ts", "size")))
    table = summary.merge(corrected.assignments, on="tracklet_id").sort_values(["global_id", "start_ts"])
    agreement_m, pairs = cross_camera_agreement(boxes.merge(corrected.assignments, on="tracklet_id"))
    yield Output(GLOBAL_IDENTITIES.table(table), metadata={
        "identities": int(table["global_id"].nunique()), "tracklets": len(table),
        "overrides_applied": len(corrected.applied),
        "static_identities_dropped": MetadataValue.md(static.drop(columns="tracklets").round(3).to_markdown(index=False)
                                                      if len(static) else "none"),
        "overrides_skipped": MetadataValue.json({str(k): v for k, v in corrected.skipped.items()}),
        "links": MetadataValue.json({k: int(v) for k, v in result.diagnostics.items()}),
        "preview": MetadataValue.md(table.head(20).to_markdown(index=False))})
    yield AssetCheckResult(
        passed=bool(pairs == 0 or agreement_m <= MAX_CROSS_CAMERA_DISAGREEMENT_M), severity=AssetCheckSeverity.WARN,
        metadata={"median_m": round(agreement_m, 3) if pairs else None, "pairs": pairs},
        description="median metres between the map positions two cameras give one identity at the same instant")


@asset(partitions_def=ENVIRONMENTS, group_name="identity", io_manager_key="lake_io_manager",
       ins={"tracklets": AssetIn(**ALL_SEGMENTS), "frames": AssetIn(**ALL_SEGMENTS)})
def camera_tracks(context: AssetExecutionContext, tracklets: pa.Table, frames: pa.Table,
                  global_identities: pa.Table) -> pa.Table:
    """Each camera's final tracks: boxes with their global id, short holes interpolated (flagged)
    and fleeting identities dropped, now that the whole environment is known (spoton.identity.postprocess)."""
    boxes = tracklets.to_pandas().merge(global_identities.select(["tracklet_id", "global_id"]).to_pandas(),
                                        on="tracklet_id")
    clock = FrameClock.of(frames["global_frame"], frames["ts"])
    table = clean_environment_tracks(boxes, clock.step, clock.fps)
    context.add_output_metadata({"rows": len(table), "interpolated": int(table["interpolated"].sum()),
                                 "dropped_rows": int(len(boxes) - (~table["interpolated"]).sum()),
                                 "identities": int(table["global_id"].nunique())})
    return CAMERA_TRACKS.table(table)


@asset(partitions_def=ENVIRONMENTS, group_name="identity", io_manager_key="lake_io_manager")
def map_trajectories(context: AssetExecutionContext, camera_tracks: pa.Table, store: StoreResource) -> pa.Table:
    """Each identity's path on the floor in metres: cameras fused per instant (each weighted by
    how far its calibration spreads a box's foot point on the floor), then smoothed."""
    env = load_environment(store.get_store(), context.partition_key)
    located = camera_tracks.to_pandas().dropna(subset=["map_x", "map_y"])
    trajectories = fuse_and_smooth(with_foot_spread(located, {c.name: c.spec() for c in env.cameras}))
    context.add_output_metadata({"identities": int(trajectories["global_id"].nunique()), "samples": len(trajectories),
                                 "preview": MetadataValue.md(trajectories.head(10).to_markdown(index=False))})
    return MAP_TRAJECTORIES.table(trajectories)
