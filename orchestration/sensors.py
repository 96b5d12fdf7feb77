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

    The cursor remembers which (environment, segment) pairs were already requested,
    so each new segment is processed once; re-processing is a manual re-materialization.
    """
    found = scan_sub_videos(store.get_store())  # {environment: {segment: cameras}}
    seen = {tuple(pair) for pair in json.loads(context.cursor or "[]")}
    pairs = {(env, seg) for env, segments in found.items() for seg in segments}
    new_pairs = sorted(pairs - seen)
    known_envs = set(context.instance.get_dynamic_partitions(ENVIRONMENTS.name))
    known_segments = set(context.instance.get_dynamic_partitions(SEGMENTS.name))
    requests = []
    new_envs = sorted(set(found) - known_envs)
    new_segments = sorted({seg for _, seg in pairs} - known_segments)
    if new_envs:
        requests.append(AddDynamicPartitionsRequest(ENVIRONMENTS.name, new_envs))
    if new_segments:
        requests.append(AddDynamicPartitionsRequest(SEGMENTS.name, new_segments))
    runs = [RunRequest(run_key=f"{env}|{seg}",
                       partition_key=MultiPartitionKey({"environment": env, "segment": seg}))
            for env, seg in new_pairs]
    return SensorResult(run_requests=runs, dynamic_partitions_requests=requests,
                        cursor=json.dumps(sorted(pairs | seen)))
