"""Jobs: per-segment processing (what the sensor requests), per-environment analysis and daily retention."""
from __future__ import annotations

from dagster import AssetSelection, DefaultScheduleStatus, RunConfig, ScheduleDefinition, define_asset_job

from assets.partitions import ENV_SEGMENT, ENVIRONMENTS
from assets.retention import RetentionConfig
from orchestration.resources import retention_days_from_env

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

apply_retention = define_asset_job(
    "apply_retention", selection=AssetSelection.groups("maintenance"),
    description="Delete live history and uploads older than SPOTON_RETENTION_DAYS; record them in retention_log.",
    config=RunConfig(ops={"retention_log": RetentionConfig(days=retention_days_from_env())}))

daily_retention = ScheduleDefinition(job=apply_retention, cron_schedule="30 3 * * *", execution_timezone="UTC",
                                     default_status=DefaultScheduleStatus.RUNNING,  # 0 days: deletes nothing
                                     description="retention once a day, at 03:30 UTC")
