"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""
from __future__ import annotations

from dagster import Definitions, load_assets_from_modules, multiprocess_executor

import assets.analytics
import assets.evaluation
import assets.identity
import assets.ingest
import assets.perception
from orchestration.jobs import analyze_environment, process_segments
from orchestration.resources import resources_for
from orchestration.sensors import sub_video_sensor

# Two partitions at a time on a 2-core machine: each process runs ONNX Runtime and torch on one thread.
executor = multiprocess_executor.configured({"max_concurrent": 2})

defs = Definitions(
    assets=load_assets_from_modules([assets.ingest, assets.perception, assets.identity, assets.analytics,
                                    assets.evaluation]),
    jobs=[process_segments, analyze_environment],
    sensors=[sub_video_sensor],
    resources=resources_for(),
    executor=executor,
)
