"""Environment level: floor-plan heatmap, zone occupancy over time and dwell per visit."""

import base64

import pyarrow as pa
from dagster import AssetExecutionContext, MetadataValue, asset

from assets.ingest import StoreResource
from assets.partitions import ENVIRONMENTS
from spoton import analytics
from spoton.storage.schemas import DWELL, HEATMAPS, OCCUPANCY
from spoton.site.storage import load_environment

HEATMAP_CELL_M = 0.5
OCCUPANCY_BUCKET_S = 10.0


@asset(partitions_def=ENVIRONMENTS, group_name="analytics", io_manager_key="lake_io_manager")
def heatmaps(context: AssetExecutionContext, map_trajectories: pa.Table, store: StoreResource) -> pa.Table:
    """Person-seconds per 0.5 m floor cell; the picture is in the metadata and beside the table."""
    env = load_environment(store.get_store(), context.partition_key)
    extent = env.floor_plan.bounds_m
    table = analytics.heatmap(map_trajectories.to_pandas(), extent_m=extent, cell_m=HEATMAP_CELL_M)
    object_store = store.get_store()
    plan_key = f"{context.partition_key}/floor_plan.png"
    plan = object_store.read_bytes(plan_key) if object_store.exists(plan_key) else None
    png = analytics.heatmap_image(table, extent, HEATMAP_CELL_M, plan, y_up=True)  # FloorPlan: +Y up
    key = f"{context.partition_key}/heatmap.png"
    object_store.write_bytes(key, png)
    context.add_output_metadata({
        "cells": len(table), "picture_key": key,
        "heatmap": MetadataValue.md(f"![heatmap](data:image/png;base64,{base64.b64encode(png).decode()})")})
    return HEATMAPS.table(table)


@asset(partitions_def=ENVIRONMENTS, group_name="analytics", io_manager_key="lake_io_manager")
def occupancy(context: AssetExecutionContext, map_trajectories: pa.Table, store: StoreResource) -> pa.Table:
    """People per zone per 10 s bucket (distinct and time-averaged)."""
    env = load_environment(store.get_store(), context.partition_key)
    table = analytics.occupancy(map_trajectories.to_pandas(), list(env.zones), bucket_s=OCCUPANCY_BUCKET_S)
    context.add_output_metadata({"rows": len(table), "preview": MetadataValue.md(table.head(12).to_markdown(index=False))})
    return OCCUPANCY.table(table)


@asset(partitions_def=ENVIRONMENTS, group_name="analytics", io_manager_key="lake_io_manager")
def dwell(context: AssetExecutionContext, map_trajectories: pa.Table, store: StoreResource) -> pa.Table:
    """Each visit of an identity to a zone: enter, exit, seconds."""
    env = load_environment(store.get_store(), context.partition_key)
    table = analytics.dwell(map_trajectories.to_pandas(), list(env.zones))
    context.add_output_metadata({"visits": len(table), "preview": MetadataValue.md(table.head(12).to_markdown(index=False))})
    return DWELL.table(table)
