"""Retention: delete live history and uploads older than N days, and say what went.

What expires (``retention_days`` > 0; 0 or None keeps everything):

- live history files of the lake (``{table}/live/{env}/{YYYY-MM-DD}/...``, see
  :mod:`spoton.storage.lake`), once their whole day is older than the retention;
- uploads (``uploads/{id}/``: the video, its frames, its thumbnail, then its record) created
  before it (the record's ``created_unix``).

Batch partitions are never touched: they are the pipeline's output, re-made by re-materializing.
Ages come from keys and records, not file times, so the same rule holds on S3.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pyarrow as pa

from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import RETENTION_LOG, TABLES
from spoton.storage.store import ObjectStore, StoreError

log = logging.getLogger(__name__)
UPLOADS = "uploads"


@dataclass(frozen=True)
class Deleted:
    """One object retention removed: from which store, what it was, and the time that made it expire."""

    store: str  # lake | store
    kind: str  # live_history | upload | thumbnail
    key: str
    dated: datetime  # the live file's day (its end) or the upload's creation, UTC
    environment: str | None = None


def expired(lake: ObjectStore, store: ObjectStore, retention_days: float | None, now: datetime) -> list[Deleted]:
    """What :func:`apply_retention` would delete now (nothing when ``retention_days`` is 0 or None)."""
    if not retention_days:
        return []
    if retention_days < 0:
        raise ValueError(f"retention_days must be >= 0 (0: keep forever), got {retention_days}")
    cutoff = now - timedelta(days=retention_days)
    found = []
    parquet_lake = ParquetLake(lake)
    for table in sorted(name for name, contract in TABLES.items() if contract.live):
        for key in parquet_lake.live_keys(table):
            _, _, environment, day, _ = key.split("/")
            try:
                day_end = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc) + timedelta(days=1)
            except ValueError:
                log.warning("retention: %s has no date folder; kept", key)
                continue
            if day_end <= cutoff:
                found.append(Deleted("lake", "live_history", key, day_end, environment))
    for record_key in (k for k in store.list_keys(f"{UPLOADS}/") if k.endswith("/upload.json")):
        try:
            created = datetime.fromtimestamp(float(json.loads(store.read_bytes(record_key))["created_unix"]),
                                             timezone.utc)
        except (StoreError, ValueError, KeyError, TypeError) as exc:
            log.warning("retention: upload record %s is unreadable (%s); kept", record_key, exc)
            continue
        if created < cutoff:
            folder = record_key.rsplit("/", 1)[0] + "/"
            keys = [k for k in store.list_keys(folder) if k != record_key] + [record_key]  # the record last
            found += [Deleted("store", "thumbnail" if k.endswith("/thumbnail.jpg") else "upload", k, created)
                      for k in keys]
    return found


def apply_retention(lake: ObjectStore, store: ObjectStore, retention_days: float | None,
                    now: datetime | None = None) -> list[Deleted]:
    """Delete what expired (:func:`expired`) and return it; a key that cannot be deleted is logged,
    left for the next run and not returned."""
    now = now or datetime.now(timezone.utc)
    deleted = []
    for item in expired(lake, store, retention_days, now):
        try:
            (lake if item.store == "lake" else store).delete(item.key)
        except (StoreError, OSError) as exc:
            log.warning("retention: could not delete %s (%s); the next run tries again", item.key, exc)
            continue
        deleted.append(item)
    return deleted


def retention_log_table(deleted: list[Deleted], retention_days: float, now: datetime) -> pa.Table:
    """The ``retention_log`` file of one run: one row per deleted object (``environment``: "" for uploads)."""
    own = RETENTION_LOG.table(pa.table({
        "deleted_at": pa.array([now] * len(deleted), pa.timestamp("us", tz="UTC")),
        "retention_days": pa.array([float(retention_days)] * len(deleted), pa.float64()),
        "store": pa.array([d.store for d in deleted], pa.string()), "kind": pa.array([d.kind for d in deleted], pa.string()),
        "key": pa.array([d.key for d in deleted], pa.string()),
        "dated": pa.array([d.dated for d in deleted], pa.timestamp("us", tz="UTC"))}))
    environment = pa.array([d.environment or "" for d in deleted], pa.string())
    table = own.add_column(0, pa.field("environment", pa.string(), nullable=False), environment)
    return RETENTION_LOG.check(table, stored=True)


def retention_log_key(now: datetime) -> str:
    """One append-only file per run: ``retention_log/{YYYY-MM-DD}/{HHMMSS.ffffff}.parquet``."""
    return f"{RETENTION_LOG.name}/{now:%Y-%m-%d}/{now:%H%M%S.%f}.parquet"
