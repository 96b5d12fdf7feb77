"""Partitions: environment x segment, both dynamic, added by the store sensor.

Segment-level assets (per sub-video index) use the two-dimensional
``ENV_SEGMENT``; environment-level assets (identities, trajectories, analytics)
use ``ENVIRONMENTS`` and read every segment of their environment.
"""
from __future__ import annotations

import dagster as dg

ENVIRONMENTS = dg.DynamicPartitionsDefinition(name="environments")
SEGMENTS = dg.DynamicPartitionsDefinition(name="segments")
ENV_SEGMENT = dg.MultiPartitionsDefinition({"environment": ENVIRONMENTS, "segment": SEGMENTS})

# an environment-level asset depends on all segments of its environment
ALL_SEGMENTS_OF_ENVIRONMENT = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="environment")


def split_key(context: dg.AssetExecutionContext | dg.InputContext | dg.OutputContext) -> tuple[str, str | None]:
    """(environment, segment) of the partition being written; segment is None at environment level."""
    key = context.partition_key
    if isinstance(key, dg.MultiPartitionKey):
        return key.keys_by_dimension["environment"], key.keys_by_dimension["segment"]
    return key, None
