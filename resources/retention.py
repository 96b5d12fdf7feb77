"""How long live history and uploads are kept (``SPOTON_RETENTION_DAYS``; 0: forever)."""
from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field


class RetentionResource(ConfigurableResource):
    days: float = Field(0.0, ge=0.0, description="days live history and uploads are kept; 0 keeps them forever")
