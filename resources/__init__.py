"""Dagster resources: thin adapters that build SpotOn core objects from configuration."""
