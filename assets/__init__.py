"""Dagster software-defined assets: thin adapters over ``spoton`` core operations."""
