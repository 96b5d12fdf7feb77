"""Dagster orchestration: partitions, sensors, checks and the Definitions object (``orchestration.definitions``)."""
