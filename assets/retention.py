"""Maintenance: retention of live history and uploads (``SPOTON_RETENTION_DAYS``), daily."""

import io
from datetime import datetime, timezone

import pyarrow.parquet as pq
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from resources.retention import RetentionResource
from resources.store import ObjectStoreResource as StoreResource
from spoton.storage.retention import apply_retention, retention_log_key, retention_log_table


@asset(group_name="maintenance", io_manager_key="lake_io_manager")  # the lake; MaterializeResult: no output stored
def retention_log(context: AssetExecutionContext, store: StoreResource, retention: RetentionResource) -> MaterializeResult:
    """Delete live history files and uploads older than the retention (none when it is 0: keep forever),
    and append what went to the lake's ``retention_log`` table (one file per run)."""
    now = datetime.now(timezone.utc)
    lake = context.resources.lake_io_manager.store.get_store()
    deleted = apply_retention(lake, store.get_store(), retention.days, now)
    key = None
    if deleted:
        buffer = io.BytesIO()
        pq.write_table(retention_log_table(deleted, retention.days, now), buffer, compression="zstd")
        key = retention_log_key(now)
        lake.write_bytes(key, buffer.getvalue())
    by_kind = {kind: sum(d.kind == kind for d in deleted) for kind in sorted({d.kind for d in deleted})}
    return MaterializeResult(metadata={
        "retention_days": retention.days, "deleted": len(deleted), "by_kind": MetadataValue.json(by_kind),
        "log_key": key or "nothing deleted",
        "keys": MetadataValue.md("\n".join(f"- {d.store}: `{d.key}`" for d in deleted[:50]) or "none")})
