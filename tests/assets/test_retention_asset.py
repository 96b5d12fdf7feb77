"""The daily retention job over a real local lake and store: it deletes what expired and appends
what it deleted to the lake's retention_log (queryable in the catalog); 0 days deletes nothing."""
from __future__ import annotations

import io
import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import RunConfig, materialize

from assets.retention import RetentionConfig, retention_log
from orchestration.definitions import defs
from orchestration.jobs import daily_retention
from resources.lake_io import ParquetLakeIOManager
from resources.store import LocalStoreResource
from spoton.storage.catalog import build_catalog, query
from spoton.storage.lake import ParquetLake, live_key
from spoton.storage.schemas import table_contract
from spoton.storage.store import LocalStore


def run(tmp_path, days: float):
    resources = {"store": LocalStoreResource(root=str(tmp_path / "store")),
                 "lake_io_manager": ParquetLakeIOManager(store=LocalStoreResource(root=str(tmp_path / "lake")))}
    return materialize([retention_log], resources=resources,
                       run_config=RunConfig(ops={"retention_log": RetentionConfig(days=days)}))


def test_retention_job_deletes_and_records(tmp_path):
    lake, store = LocalStore(tmp_path / "lake"), LocalStore(tmp_path / "store")
    old, fresh = live_key("camera_tracks", "env", "2020-01-01", "s-1", 1), live_key(
        "camera_tracks", "env", time.strftime("%Y-%m-%d", time.gmtime()), "s-2", 1)
    empty = io.BytesIO()
    contract = table_contract("camera_tracks")
    pq.write_table(pa.schema([c.field for c in contract.stored_columns]).empty_table(), empty)
    lake.write_bytes(old, empty.getvalue())
    lake.write_bytes(fresh, empty.getvalue())
    store.write_bytes("uploads/u1/upload.json", json.dumps({"created_unix": 0}).encode())

    kept = run(tmp_path, 0)
    assert kept.success and set(lake.list_keys()) == {old, fresh}
    result = run(tmp_path, 30)
    assert result.success
    assert old not in lake.list_keys() and fresh in lake.list_keys() and not store.list_keys("uploads/")
    [log_key] = [k for k in lake.list_keys() if k.startswith("retention_log/")]
    assert sorted(pq.read_table(tmp_path / "lake" / log_key)["key"].to_pylist()) == sorted([old, "uploads/u1/upload.json"])
    metadata = result.asset_materializations_for_node("retention_log")[0].metadata
    assert metadata["deleted"].value == 2 and metadata["log_key"].value == log_key
    build_catalog(ParquetLake(lake), tmp_path / "c.duckdb")
    _, rows = query(tmp_path / "c.duckdb", "select kind, count(*) from retention_log group by all order by 1")
    assert rows == [("live_history", 1), ("upload", 1)]


def test_the_schedule_runs_the_job_daily_with_the_days_of_the_environment(monkeypatch):
    assert daily_retention.cron_schedule == "30 3 * * *"
    assert defs.resolve_job_def("apply_retention").name == daily_retention.job_name
    from orchestration.resources import retention_days_from_env

    monkeypatch.setenv("SPOTON_RETENTION_DAYS", "14")
    assert retention_days_from_env() == 14.0
    monkeypatch.setenv("SPOTON_RETENTION_DAYS", "")
    assert retention_days_from_env() == 0.0
    monkeypatch.setenv("SPOTON_RETENTION_DAYS", "two weeks")
    with pytest.raises(ValueError, match="SPOTON_RETENTION_DAYS='two weeks'"):
        retention_days_from_env()
