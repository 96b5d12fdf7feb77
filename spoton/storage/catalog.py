"""DuckDB catalog over the Parquet lake: one view per table, for ``spoton sql`` and the review app.

Each view and column carries its table contract's description as a comment (``spoton.storage.schemas``):
``select column_name, data_type, comment from duckdb_columns() where table_name = 'camera_tracks'``.

A live table's view (camera_tracks, map_trajectories) is the union of its batch partitions and the
live sessions' files (one glob, ``union_by_name``); filter on ``source`` ('batch' / 'live'). Batch
files written before the lake added ``source`` read as 'batch'.

A local lake is read in place. An S3 lake is mirrored into a local folder first
(DuckDB's own S3 support is an extension it would download at run time).
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import TABLES


def mirror_lake(lake: ParquetLake, folder: Path) -> Path:
    """Copy a remote lake's Parquet files to ``folder`` (files unchanged in size are skipped)."""
    folder = Path(folder)
    for table in lake.tables():
        for key in lake.keys(table):
            data = lake.store.read_bytes(key)
            target = folder / key
            if target.is_file() and target.stat().st_size == len(data):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return folder


def build_catalog(lake: ParquetLake, database: Path, mirror_dir: Path | None = None) -> list[str]:
    """(Re)create one view per lake table in the DuckDB file ``database``; return the view names."""
    root = lake.local_root()
    if root is None:
        root = mirror_lake(lake, mirror_dir or Path(database).with_suffix(".lake"))
    database = Path(database)
    database.parent.mkdir(parents=True, exist_ok=True)
    views = []
    with duckdb.connect(str(database)) as connection:
        for table in lake.tables():
            select = table_select(connection, root, table)
            if select is None:
                continue
            connection.execute(f"CREATE OR REPLACE VIEW {table} AS {select}")
            if table in TABLES:
                _comment(connection, table)
            views.append(table)
    return views


def table_select(connection: duckdb.DuckDBPyConnection, root: Path, table: str) -> str | None:
    """``SELECT ...`` of every Parquet file of ``table`` under the local lake folder ``root`` (batch
    partitions and live files alike), or None when it has none. A live table's always has ``source``
    and ``session_id``: files written before the lake added them read as batch rows."""
    folder = Path(root) / table
    if not folder.is_dir() or not any(folder.rglob("*.parquet")):
        return None
    scan = f"read_parquet({_sql_string(folder.as_posix() + '/**/*.parquet')}, union_by_name = true)"
    if table not in TABLES or not TABLES[table].live:
        return f"SELECT * FROM {scan}"
    present = {row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    if "source" in present and "session_id" in present:
        return f"SELECT * FROM {scan}"
    source = "coalesce(source, 'batch')" if "source" in present else "'batch'"
    extra = [f"{source} AS source"] + ([] if "session_id" in present else ["CAST(NULL AS VARCHAR) AS session_id"])
    exclude = " EXCLUDE (source)" if "source" in present else ""
    return f"SELECT *{exclude}, {', '.join(extra)} FROM {scan}"


def _comment(connection: duckdb.DuckDBPyConnection, view: str) -> None:
    """The contract's descriptions as comments on the view and on each of its columns."""
    contract = TABLES[view]
    present = {row[0] for row in connection.execute(f"DESCRIBE {view}").fetchall()}
    connection.execute(f"COMMENT ON VIEW {view} IS {_sql_string(contract.description)}")
    for column in contract.stored_columns:
        if column.name in present:
            connection.execute(f"COMMENT ON COLUMN {view}.{column.name} IS {_sql_string(column.description)}")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def query(database: Path, sql: str):
    """Run one statement against the catalog; returns a DuckDB relation's rows and column names."""
    if not Path(database).is_file():
        raise FileNotFoundError(
            f"no catalog at {database}: run `make demo` (or materialize the pipeline) first")
    with duckdb.connect(str(database), read_only=True) as connection:
        cursor = connection.execute(sql)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return columns, cursor.fetchall()
