"""Sensor: new sub-videos in the store become partitions, and runs that process them."""

import json

from dagster import (AddDynamicPartitionsRequest, DefaultSensorStatus, MultiPartitionKey, RunRequest, SensorEvaluationContext,
                     SensorResult, sensor)

from assets.partitions import ENVIRONMENTS, SEGMENTS
from orchestration.jobs import process_segments
from resources.store import ObjectStoreResource
from spoton.environment import scan_sub_videos


@sensor(job=process_segments, minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING)
def sub_video_sensor(context: SensorEvaluationContext, store: ObjectStoreResource):
    """Adds environment and segment partitions for sub-videos that appeared, and requests their runs.

    The cursor remembers which cameras each (environment, segment) was requested with, so a segment
    is processed once, and again when a camera is added to its site (an upload into an existing
    site); any other re-processing is a manual re-materialization.
    """
    found = scan_sub_videos(store.get_store())  # {environment: {segment: cameras}}
    current = {(env, seg): cameras for env, segments in found.items() for seg, cameras in segments.items()}
    seen: dict[tuple[str, str], set[str]] = {}
    for env, seg, *cameras in json.loads(context.cursor or "[]"):  # older cursors name no cameras: as now
        seen[(env, seg)] = set(cameras) if cameras else current.get((env, seg), set())
    due = sorted(key for key, cameras in current.items() if key not in seen or not cameras <= seen[key])
    known_envs = set(context.instance.get_dynamic_partitions(ENVIRONMENTS.name))
    known_segments = set(context.instance.get_dynamic_partitions(SEGMENTS.name))
    requests = []
    new_envs = sorted(set(found) - known_envs)
    new_segments = sorted({seg for _, seg in current} - known_segments)
    if new_envs:
        requests.append(AddDynamicPartitionsRequest(ENVIRONMENTS.name, new_envs))
    if new_segments:
        requests.append(AddDynamicPartitionsRequest(SEGMENTS.name, new_segments))
    runs = [RunRequest(run_key=f"{env}|{seg}|{'+'.join(sorted(current[(env, seg)]))}",
                       partition_key=MultiPartitionKey({"environment": env, "segment": seg}))
            for env, seg in due]
    cursor = [[env, seg, *sorted(cameras)] for (env, seg), cameras in sorted((seen | current).items())]
    return SensorResult(run_requests=runs, dynamic_partitions_requests=requests, cursor=json.dumps(cursor))
