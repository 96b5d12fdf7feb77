"""Maintenance: retention of live history and uploads (``SPOTON_RETENTION_DAYS``), daily."""

import io
from datetime import datetime, timezone

import pyarrow.parquet as pq
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from resources.store import ObjectStoreResource as StoreResource
from spoton.storage.retention import apply_retention, retention_log_key, retention_log_table


class RetentionConfig(Config):
    """The ``apply_retention`` job sets ``days`` from ``SPOTON_RETENTION_DAYS`` (orchestration/jobs.py)."""

    days: float = Field(0.0, ge=0.0, description="days live history and uploads are kept; 0 keeps them forever")


@asset(group_name="maintenance", io_manager_key="lake_io_manager")  # the lake; MaterializeResult: no output stored
def retention_log(context: AssetExecutionContext, config: RetentionConfig, store: StoreResource) -> MaterializeResult:
    """Delete live history files and uploads older than the retention (none when it is 0: keep forever),
    and append what went to the lake's ``retention_log`` table (one file per run)."""
    now = datetime.now(timezone.utc)
    lake = context.resources.lake_io_manager.store.get_store()
    deleted = apply_retention(lake, store.get_store(), config.days, now)
    key = None
    if deleted:
        buffer = io.BytesIO()
        pq.write_table(retention_log_table(deleted, config.days, now), buffer, compression="zstd")
        key = retention_log_key(now)
        lake.write_bytes(key, buffer.getvalue())
    by_kind = {kind: sum(d.kind == kind for d in deleted) for kind in sorted({d.kind for d in deleted})}
    return MaterializeResult(metadata={
        "retention_days": config.days, "deleted": len(deleted), "by_kind": MetadataValue.json(by_kind),
        "log_key": key or "nothing deleted",
        "keys": MetadataValue.md("\n".join(f"- {d.store}: `{d.key}`" for d in deleted[:50]) or "none")})
