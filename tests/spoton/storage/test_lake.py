import os

import pyarrow as pa
import pytest

from spoton.storage.catalog import build_catalog, query
from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import DWELL, ENVIRONMENT, GLOBAL_ID, ZONE
from spoton.storage.store import LocalStore, StoreError


def test_partitions_replace_and_carry_their_keys(tmp_path):
    lake = ParquetLake(LocalStore(tmp_path))
    lake.write("tracklets", pa.table({"x": [1, 2]}), "env", "01")
    lake.write("tracklets", pa.table({"x": [3]}), "env", "01")  # re-materialized: replaced
    lake.write("tracklets", pa.table({"x": [4]}), "env", "02")
    table = lake.read_many("tracklets", "env", ["01", "02"])
    assert table.column("x").to_pylist() == [3, 4]
    assert table.column("segment").to_pylist() == ["01", "02"] and set(table.column("environment").to_pylist()) == {"env"}
    assert lake.segments("tracklets", "env") == ["01", "02"] and lake.segments("tracklets", "other") == []
    build_catalog(lake, tmp_path / "c.duckdb")
    assert query(tmp_path / "c.duckdb", "select count(*) from tracklets")[1] == [(2,)]


def test_a_write_killed_before_rename_leaves_the_old_file_and_no_visible_partial(tmp_path, monkeypatch):
    lake = ParquetLake(LocalStore(tmp_path))
    lake.write("detections", pa.table({"x": [1]}), "env", "01")

    def crash(*args):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        lake.write("detections", pa.table({"x": [9, 9, 9]}), "env", "01")
    monkeypatch.undo()
    assert lake.read("detections", "env", "01").column("x").to_pylist() == [1]
    assert lake.keys("detections") == ["detections/env/01.parquet"]  # the partial .part file is not listed
    build_catalog(lake, tmp_path / "c.duckdb")
    assert query(tmp_path / "c.duckdb", "select count(*) from detections")[1] == [(1,)]


def test_keys_cannot_escape_the_store(tmp_path):
    store = LocalStore(tmp_path / "store")
    for bad in ("../outside.txt", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(StoreError):
            store.write_bytes(bad, b"x")
    with pytest.raises(StoreError, match="materialize that partition"):
        ParquetLake(store).read("tracklets", "env", "09")


@pytest.fixture
def full_fs(tmp_path):
    """A 2 MiB tmpfs mounted for this test (needs root and mount permission, else skipped)."""
    import subprocess

    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root/CAP_SYS_ADMIN): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _incompressible(n_bytes: int) -> pa.Table:
    import numpy as np

    return pa.table({"x": np.random.default_rng(0).random(n_bytes // 8)})


def test_a_write_on_a_full_filesystem_fails_clearly_and_keeps_the_previous_file(full_fs):
    lake = ParquetLake(LocalStore(full_fs / "lake"))
    lake.write("tracks", pa.table({"x": [1, 2, 3]}), "pets_s2l1", "01")
    with pytest.raises(StoreError) as error:
        lake.write("tracks", _incompressible(3 * 1024 * 1024), "pets_s2l1", "01")  # more than the 2 MiB
    message = str(error.value)
    assert "tracks partition pets_s2l1/01 was not written" in message
    assert "no space left" in message.lower() and "unchanged" in message
    assert lake.read("tracks", "pets_s2l1", "01").column("x").to_pylist() == [1, 2, 3]
    assert sorted(p.name for p in (full_fs / "lake" / "tracks" / "pets_s2l1").iterdir()) == ["01.parquet"]
    lake.write("tracks", pa.table({"x": [4]}), "pets_s2l1", "01")  # the space was given back
    assert lake.read("tracks", "pets_s2l1", "01").column("x").to_pylist() == [4]


def test_write_parquet_atomic_on_a_full_filesystem(full_fs):
    import pyarrow.parquet as pq

    from spoton.storage.schemas import TRACKS_SCHEMA, write_parquet_atomic

    path = full_fs / "out" / "tracks.parquet"
    write_parquet_atomic(pa.table({"x": [1]}), path)
    big = _incompressible(3 * 1024 * 1024).replace_schema_metadata(TRACKS_SCHEMA.metadata)
    with pytest.raises(StoreError, match=r"could not write the tracks Parquet file tracks.parquet: No space left"):
        write_parquet_atomic(big, path)
    assert pq.read_table(path).column("x").to_pylist() == [1]
    assert [p.name for p in path.parent.iterdir()] == ["tracks.parquet"]


def test_catalog_views_carry_the_contract_descriptions_as_comments(tmp_path):
    lake = ParquetLake(LocalStore(tmp_path / "lake"))
    lake.write("dwell", DWELL.table(pa.Table.from_pylist([{"global_id": 1, "zone": "door", "enter_ts": 0.0,
                                                           "exit_ts": 1.0, "seconds": 1.0}])), "env")
    lake.write("scratch", pa.table({"x": [1]}), "env")  # a table without a contract gets a plain view
    catalog = tmp_path / "c.duckdb"
    assert build_catalog(lake, catalog) == ["dwell", "scratch"]
    _, rows = query(catalog, "select table_name, column_name, comment from duckdb_columns() "
                             "where table_name in ('dwell', 'scratch') order by table_name, column_index")
    assert rows[:3] == [("dwell", "environment", ENVIRONMENT.description),
                        ("dwell", "global_id", GLOBAL_ID.description), ("dwell", "zone", ZONE.description)]
    assert all(comment for table, _, comment in rows if table == "dwell")
    assert [comment for table, _, comment in rows if table == "scratch"] == [None, None]
    assert query(catalog, "select comment from duckdb_views() where view_name = 'dwell'")[1] == [(DWELL.description,)]
