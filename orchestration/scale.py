"""Materialize every partition of an environment through the prod profile's Celery executor: this process
launches the runs (``--parallel-runs`` segment runs at a time, then the environment run), the Celery
workers (``python -m orchestration.workers``) run their steps. Prints the steps each worker ran and the
throughput in camera-frames/s.

    SPOTON_DEPLOYMENT=prod python -m orchestration.scale --environment ENV [--parallel-runs 2] [--json]

Needs the prod settings (docs/deploy.md): DAGSTER_HOME with a PostgreSQL dagster.yaml, SPOTON_S3_*,
SPOTON_CELERY_BROKER, and workers listening on the same broker.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass

from celery.exceptions import DuplicateTaskNameWarning
from dagster import DagsterEventType, DagsterInstance, MultiPartitionKey, build_resources, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

from orchestration.resources import REPO_ROOT, deployment_name, resources_for
from orchestration.runner import QUIET, PartitionRun, materialize_all, register_partitions, run_outcome
from spoton.environment import scan_sub_videos
from spoton.storage.lake import ParquetLake

# dagster-celery registers its step task again for every step it submits; Celery warns each time
warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)
WORKER_KEY = "Celery worker"  # dagster-celery's metadata on the engine event a worker logs for each step


def launch(job_name: str, partition_key: str | MultiPartitionKey) -> PartitionRun:
    """One partition run of a job of the code location, with the code location's executor, on the
    instance of DAGSTER_HOME; blocks until the run ends."""
    job = ReconstructableRepository.for_module("orchestration.definitions", "defs", str(REPO_ROOT)) \
        .get_reconstructable_job(job_name)
    tags = {**job.get_definition().partitions_def.get_tags_for_partition_key(partition_key),
            "spoton/launched_by": "scale"}
    with DagsterInstance.get() as instance:
        return run_outcome(str(partition_key), execute_job(job, instance, run_config=QUIET, tags=tags))


def launch_segment(environment: str, segment: str) -> PartitionRun:
    return launch("process_segments", MultiPartitionKey({"environment": environment, "segment": segment}))


def launch_environment(environment: str) -> PartitionRun:
    return launch("analyze_environment", environment)


def steps_per_worker(instance: DagsterInstance, run_ids: list[str]) -> dict[str, int]:
    """Steps each worker started, by worker name (the part before '@host'), from the runs' event logs."""
    counts: Counter[str] = Counter()
    for run_id in run_ids:
        for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
            metadata = record.dagster_event.engine_event_data.metadata
            if WORKER_KEY in metadata:
                counts[str(metadata[WORKER_KEY].value).split("@")[0]] += 1
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class ScaleReport:
    runs: list[PartitionRun]
    steps_per_worker: dict[str, int]
    camera_frames: int
    seconds: float

    @property
    def success(self) -> bool:
        return bool(self.runs) and all(run.success for run in self.runs)

    def lines(self) -> list[str]:
        return [*(f"{run.partition:<22} {'ok' if run.success else 'FAILED: ' + run.error}  run {run.run_id[:8]}"
                  for run in self.runs),
                "steps per worker: " + ", ".join(f"{name}={n}" for name, n in self.steps_per_worker.items()),
                f"throughput: {self.camera_frames / self.seconds:.1f} camera-frames/s "
                f"({self.camera_frames} camera-frames in {self.seconds:.1f} s)"]


def materialize_on_celery(environment: str, parallel_runs: int) -> ScaleReport:
    """Register the store's partitions, materialize them all through Celery, count what was done."""
    if deployment_name() != "prod":
        raise ValueError("the Celery executor is the prod profile's: set SPOTON_DEPLOYMENT=prod")
    prod = resources_for()
    with build_resources({"store": prod["store"], "lake": prod["lake_io_manager"].store}) as resolved:
        store, lake = resolved.store.get_store(), ParquetLake(resolved.lake.get_store())
    found = scan_sub_videos(store)
    if environment not in found:
        raise ValueError(f"no sub-videos of environment {environment!r} in the store: upload them first")
    segments = sorted(found[environment])
    with DagsterInstance.get() as instance:
        register_partitions(instance, found)
    started = time.perf_counter()
    runs = materialize_all(environment, segments, parallel_runs, segment_run=launch_segment,
                           environment_run=launch_environment)
    seconds = time.perf_counter() - started
    done = [run.partition.split("|")[-1] for run in runs[:len(segments)] if run.success]
    frames = lake.read_many("frames", environment, done).num_rows
    with DagsterInstance.get() as instance:
        return ScaleReport(runs, steps_per_worker(instance, [run.run_id for run in runs]), frames, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--environment", required=True, help="an environment in the store, e.g. pets_s2l1")
    parser.add_argument("--parallel-runs", type=int, default=2,
                        help="segment runs launched at once (at least the number of workers keeps them all busy)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON line")
    args = parser.parse_args()
    try:
        report = materialize_on_celery(args.environment, args.parallel_runs)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**asdict(report), "success": report.success}))
    else:
        print("\n".join(report.lines()))
    return 0 if report.success else 1


if __name__ == "__main__":
    sys.exit(main())
