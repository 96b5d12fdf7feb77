"""Dagster instance storage on the machine's real PostgreSQL, configured by deploy/dagster.postgres.yaml."""
import os
import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance

from assets.partitions import ENVIRONMENTS
from orchestration.services import ServiceError, postgres_database

REPO_ROOT = Path(__file__).resolve().parents[2]
PG = {"SPOTON_PG_HOST": os.environ.get("SPOTON_PG_HOST", "127.0.0.1"),
      "SPOTON_PG_USER": os.environ.get("SPOTON_PG_USER", "postgres"),
      "SPOTON_PG_PASSWORD": os.environ.get("SPOTON_PG_PASSWORD", "")}


@pytest.fixture
def database():
    try:
        with postgres_database(PG["SPOTON_PG_HOST"], PG["SPOTON_PG_USER"], PG["SPOTON_PG_PASSWORD"],
                               prefix="spoton_test") as name:
            yield name
    except ServiceError as error:
        pytest.skip(str(error))


def test_instance_on_postgres_keeps_partitions_and_runs(tmp_path, monkeypatch, database):
    for key, value in {**PG, "SPOTON_PG_DB": database}.items():
        monkeypatch.setenv(key, value)
    shutil.copy(REPO_ROOT / "deploy" / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions(ENVIRONMENTS.name, ["pets_s2l1"])
    with DagsterInstance.from_config(str(tmp_path)) as reopened:  # state lives in PostgreSQL
        assert reopened.get_dynamic_partitions(ENVIRONMENTS.name) == ["pets_s2l1"]


def test_instance_on_postgres_stores_run_events(tmp_path, monkeypatch, database):
    """Every event a run writes is announced with NOTIFY; the driver must accept its bound parameter."""
    from dagster import DagsterRun

    for key, value in {**PG, "SPOTON_PG_DB": database}.items():
        monkeypatch.setenv(key, value)
    shutil.copy(REPO_ROOT / "deploy" / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        run = instance.add_run(DagsterRun(job_name="probe", run_id="0" * 36))
        instance.report_engine_event("probe event", run)
        assert [r.message for r in instance.all_logs(run.run_id)] == ["probe event"]
