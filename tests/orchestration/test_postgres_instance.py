"""Dagster instance storage on the machine's real PostgreSQL, configured by deploy/dagster.postgres.yaml."""
import os
import shutil
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance

from assets.partitions import ENVIRONMENTS

REPO_ROOT = Path(__file__).resolve().parents[2]
PG = {"SPOTON_PG_HOST": os.environ.get("SPOTON_PG_HOST", "127.0.0.1"),
      "SPOTON_PG_USER": os.environ.get("SPOTON_PG_USER", "postgres"),
      "SPOTON_PG_PASSWORD": os.environ.get("SPOTON_PG_PASSWORD", "")}


@pytest.fixture
def database():
    psycopg = pytest.importorskip("psycopg")
    name = f"spoton_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(host=PG["SPOTON_PG_HOST"], user=PG["SPOTON_PG_USER"], password=PG["SPOTON_PG_PASSWORD"],
                                dbname="postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL at {PG['SPOTON_PG_HOST']}:5432 ({error})")
    admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def test_instance_on_postgres_keeps_partitions_and_runs(tmp_path, monkeypatch, database):
    for key, value in {**PG, "SPOTON_PG_DB": database}.items():
        monkeypatch.setenv(key, value)
    shutil.copy(REPO_ROOT / "deploy" / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions(ENVIRONMENTS.name, ["pets_s2l1"])
    with DagsterInstance.from_config(str(tmp_path)) as reopened:  # state lives in PostgreSQL
        assert reopened.get_dynamic_partitions(ENVIRONMENTS.name) == ["pets_s2l1"]
