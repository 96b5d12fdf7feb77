"""Jobs: per-segment processing (what the sensor requests) and per-environment analysis."""
from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from assets.partitions import ENV_SEGMENT, ENVIRONMENTS

SEGMENT_GROUPS = ("ingest", "perception")
ENVIRONMENT_GROUPS = ("identity", "analytics", "evaluation")
ADAPTATION_GROUPS = ("adaptation",)

process_segments = define_asset_job(
    "process_segments", selection=AssetSelection.groups(*SEGMENT_GROUPS), partitions_def=ENV_SEGMENT,
    description="Probe, sample, detect, track and embed one (environment, segment) partition.")

analyze_environment = define_asset_job(
    "analyze_environment", selection=AssetSelection.groups(*ENVIRONMENT_GROUPS), partitions_def=ENVIRONMENTS,
    description="Global identities, map trajectories, heatmaps, occupancy, dwell and accuracy for one environment.")

adapt_appearance = define_asset_job(
    "adapt_appearance", selection=AssetSelection.groups(*ADAPTATION_GROUPS), partitions_def=ENVIRONMENTS,
    description="Learn the environment's appearance projection head from its own tracklets (opt-in: nothing reads it yet).")
