"""Materialize partitions from Python: what `make demo`, the benchmark and the tests use.

The Dagster UI (``make ui``) and the sensor do the same through the daemon; this
module runs the same asset graph in-process, two segment partitions at a time
(one process per partition, one inference thread each: the machine's two cores).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

from dagster import AssetSelection, DagsterInstance, MultiPartitionKey, materialize

from assets.partitions import ENVIRONMENTS, SEGMENTS
from orchestration.jobs import ADAPTATION_GROUPS, ENVIRONMENT_GROUPS, SEGMENT_GROUPS
from orchestration.resources import resources_for


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the UI keeps the full event log


@dataclass(frozen=True)
class PartitionRun:
    partition: str
    success: bool
    run_id: str
    error: str = ""


def _assets():
    from orchestration.definitions import defs

    return list(defs.assets)


def register_partitions(instance: DagsterInstance, found: dict[str, dict[str, set[str]]]) -> None:
    """Add the environments and segments found in the store as dynamic partitions."""
    instance.add_dynamic_partitions(ENVIRONMENTS.name, sorted(found))
    instance.add_dynamic_partitions(SEGMENTS.name, sorted({s for segs in found.values() for s in segs}))


def _materialize(groups: tuple[str, ...], partition_key: str, resources: dict | None = None,
                 instance: DagsterInstance | None = None) -> PartitionRun:
    instance = instance or DagsterInstance.get()
    result = materialize(_assets(), instance=instance, partition_key=partition_key, run_config=QUIET,
                         selection=AssetSelection.groups(*groups), raise_on_error=False,
                         resources=resources or resources_for(), tags={"spoton/launched_by": "runner"})
    return run_outcome(partition_key, result)


def run_outcome(partition_key: str, result) -> PartitionRun:
    """A finished run's success and, when it failed, the root causes of its failed steps."""
    error = ""
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        error = "; ".join(_root_cause(e.step_failure_data.error) for e in failures) or "run failed"
    return PartitionRun(partition_key, result.success, result.run_id, error)


def _root_cause(error) -> str:
    """The user-facing message under Dagster's step-failure wrappers."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def materialize_segment(environment: str, segment: str, resources: dict | None = None,
                        instance: DagsterInstance | None = None) -> PartitionRun:
    key = MultiPartitionKey({"environment": environment, "segment": segment})
    return _materialize(SEGMENT_GROUPS, str(key), resources, instance)


def materialize_environment(environment: str, resources: dict | None = None,
                            instance: DagsterInstance | None = None) -> PartitionRun:
    return _materialize(ENVIRONMENT_GROUPS, environment, resources, instance)


def materialize_adaptation(environment: str, resources: dict | None = None,
                            instance: DagsterInstance | None = None) -> PartitionRun:
    """The opt-in ``appearance_adaptation`` of one environment (after its segments are processed)."""
    return _materialize(ADAPTATION_GROUPS, environment, resources, instance)


def materialize_all(environment: str, segments: list[str], workers: int = 2, *,
                    on_run: Callable[[PartitionRun], None] | None = None,
                    segment_run: Callable[[str, str], PartitionRun] = materialize_segment,
                    environment_run: Callable[[str], PartitionRun] = materialize_environment) -> list[PartitionRun]:
    """Every segment partition (``workers`` at a time), then the environment-level assets; each by
    ``segment_run`` / ``environment_run`` (in this process by default; ``orchestration.scale`` launches
    them on Celery).

    A failed segment (a corrupt sub-video, say) is reported and skipped; the
    environment assets use the segments that succeeded. ``on_run`` hears each run as it ends
    (segments in order).
    """
    os.environ.setdefault("SPOTON_ORT_THREADS", "1")
    if segment_run is materialize_segment and workers > 1:
        _assets()  # the asset graph's imports (~1 s of CPU) done once, before the workers fork, not in each
    on_run = on_run or (lambda run: None)
    runs = []
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        results = (pool.map(segment_run, [environment] * len(segments), segments) if pool
                   else (segment_run(environment, s) for s in segments))
        for run in results:
            on_run(run)
            runs.append(run)
    if any(run.success for run in runs):
        runs.append(environment_run(environment))
        on_run(runs[-1])
    return runs
