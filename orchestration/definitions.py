"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""
from __future__ import annotations

from dagster import Definitions, ExecutorDefinition, load_assets_from_modules, multiprocess_executor
from dagster_celery import celery_executor

import assets.adaptation
import assets.analytics
import assets.evaluation
import assets.identity
import assets.ingest
import assets.perception
import assets.retention
from orchestration.jobs import adapt_appearance, analyze_environment, apply_retention, daily_retention, process_segments
from orchestration.resources import deployment_name, resources_for
from orchestration.sensors import sub_video_sensor
from orchestration.workers import CelerySettings


def executor_for(deployment: str | None = None) -> ExecutorDefinition:
    """local: two steps at a time in subprocesses of the run (a 2-core machine, one inference thread each);
    prod: every step on the Celery workers (``python -m orchestration.workers``) through the broker."""
    if deployment_name(deployment) == "prod":
        return celery_executor.configured(CelerySettings.from_env().executor_config(), name="celery")
    return multiprocess_executor.configured({"max_concurrent": 2})


defs = Definitions(
    assets=load_assets_from_modules([assets.ingest, assets.perception, assets.identity, assets.adaptation,
                                     assets.analytics, assets.evaluation, assets.retention]),
    jobs=[process_segments, analyze_environment, adapt_appearance, apply_retention],
    schedules=[daily_retention],
    sensors=[sub_video_sensor],
    resources=resources_for(),
    executor=executor_for(),
)
