"""DuckDB catalog over the Parquet lake: one view per table, for ``spoton sql`` and the review app.

Each view and column carries its table contract's description as a comment (``spoton.storage.schemas``):
``select column_name, data_type, comment from duckdb_columns() where table_name = 'camera_tracks'``.

A live table's view (camera_tracks, map_trajectories) is the union of its batch partitions and the
live sessions' files (one glob, ``union_by_name``); filter on ``source`` ('batch' / 'live'). Batch
files written before the lake added ``source`` read as 'batch'.

A local lake is read in place. DuckDB's own S3 support (the httpfs extension) is a download at run
time, so an S3 lake is either mirrored into a local folder first (the catalog file), or, for a
query that needs a few files (the history REST), its objects are read through the store into Arrow
and registered in the connection (:func:`register_table`, :func:`environment_keys`).
"""
from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spoton.storage.lake import LiveFileName, ParquetLake, is_live_key
from spoton.storage.schemas import TABLES
from spoton.storage.store import StoreError


MIRROR_MANIFEST = ".mirror-etags.json"  # in a mirror folder: the ETag each batch file was copied at


def mirror_lake(lake: ParquetLake, folder: Path) -> Path:
    """Make ``folder`` a copy of a remote lake's Parquet files: a live file already there is kept
    (live files are never rewritten), any other file is copied again only when its ETag changed
    (re-materialized partitions: one HEAD, not a download, for each unchanged one), and a file the
    lake no longer has (retention) is removed."""
    folder = Path(folder)
    manifest_path = folder / MIRROR_MANIFEST
    try:
        copied_at = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        copied_at = {}  # a first mirror, or one from before the manifest: copy what is not there
    wanted, etags = set(), {}
    for table in lake.tables():
        for key in lake.keys(table):
            target = folder / key
            wanted.add(target)
            if is_live_key(key) and target.is_file():
                continue
            if not is_live_key(key):
                etags[key] = lake.store.info(key).etag
                if target.is_file() and copied_at.get(key) == etags[key]:
                    continue
            data = lake.store.read_bytes(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f".{target.name}.part")
            temp.write_bytes(data)
            temp.replace(target)  # a query over the mirror never sees half a file
    for stale in (set(folder.rglob("*.parquet")) if folder.is_dir() else set()) - wanted:
        stale.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    temp = manifest_path.with_name(f"{manifest_path.name}.part")
    temp.write_text(json.dumps(etags, sort_keys=True))
    temp.replace(manifest_path)
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


def environment_keys(lake: ParquetLake, table: str, environment: str, *, source: str | None = None,
                     session_id: str | None = None, from_s: float | None = None,
                     to_s: float | None = None) -> list[str]:
    """The Parquet keys of ``table`` that can hold rows of ``environment`` with this ``source``
    ('batch'/'live'), live ``session_id`` and unix-time window ``[from_s, to_s)``: the batch partitions
    (``{table}/{env}.parquet``, ``{table}/{env}/{segment}.parquet``) and the live files, pruned by
    their date folder (the UTC day of a file's first row; a file is taken to span less than a day, as
    retention also assumes) and their name (session, and the seconds its rows span). A superset:
    filter the rows too."""
    keys = []
    if source in (None, "batch") and session_id is None:
        keys += [k for k in lake.keys(table) if k == f"{table}/{environment}.parquet"
                 or (k.startswith(f"{table}/{environment}/") and k.count("/") == 2)]
    if source in (None, "live") and table in TABLES and TABLES[table].live:
        first_day = _day(from_s) - timedelta(days=1) if from_s is not None else None
        last_day = _day(to_s) if to_s is not None else None
        for key in lake.live_keys(table, environment):
            day = key.split("/")[3]
            name = LiveFileName.parse(key)
            if session_id is not None and (name is None or name.session_id != session_id):
                continue
            if name is not None and not name.may_overlap(from_s, to_s):
                continue
            try:
                dated = date.fromisoformat(day)
            except ValueError:
                dated = None  # not a date folder: keep it
            if dated is not None and ((first_day and dated < first_day) or (last_day and dated > last_day)):
                continue
            keys.append(key)
    return keys


def _day(unix_s: float) -> date:
    return datetime.fromtimestamp(min(max(unix_s, 0.0), 253_402_300_799.0), timezone.utc).date()


class LiveFileCache:
    """Decoded live lake files, least recently used dropped beyond ``max_bytes`` (Arrow bytes). Live files
    are never rewritten (a session writes each ``seq`` once), so a cached one is what S3 holds; a file
    retention deleted is no longer listed, so no longer asked for. Thread-safe."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._tables: OrderedDict[str, pa.Table] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> pa.Table | None:
        with self._lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
            return table

    def put(self, key: str, table: pa.Table) -> None:
        if not is_live_key(key) or table.nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._tables:
                return
            self._tables[key] = table
            self._bytes += table.nbytes
            while self._bytes > self.max_bytes:
                self._bytes -= self._tables.popitem(last=False)[1].nbytes


def read_tables(lake: ParquetLake, keys: list[str], workers: int = 8,
                cache: LiveFileCache | None = None) -> pa.Table | None:
    """The Parquet objects ``keys`` read through the lake's store (in parallel) into one table, by
    column name like ``table_select`` (a live table's rows always carry ``source``/``session_id``;
    older batch files read as 'batch'); live files come from ``cache`` when it has them. A key deleted
    meanwhile (retention) is skipped; any other read failure raises StoreError. None when no key has rows."""
    def read(key: str) -> pa.Table | None:
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            return cached
        try:
            data = lake.store.read_bytes(key)
        except StoreError:
            if not lake.store.exists(key):
                return None
            raise
        try:
            table = pq.read_table(io.BytesIO(data))
        except (pa.ArrowException, OSError) as exc:
            raise StoreError(f"the lake object {key!r} is not a readable Parquet file ({exc})") from exc
        name = PurePosixPath(key).parts[0]
        if name in TABLES and TABLES[name].live:
            if "source" not in table.column_names:
                table = table.append_column("source", pa.array(["batch"] * table.num_rows, pa.string()))
            else:
                index = table.column_names.index("source")
                table = table.set_column(index, "source", pc.fill_null(table["source"], "batch"))
            if "session_id" not in table.column_names:
                table = table.append_column("session_id", pa.nulls(table.num_rows, pa.string()))
        table = table.replace_schema_metadata(None)
        if cache is not None:
            cache.put(key, table)
        return table

    with ThreadPoolExecutor(max(1, min(workers, len(keys)))) as pool:
        tables = [t for t in pool.map(read, keys) if t is not None]
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def register_table(connection: duckdb.DuckDBPyConnection, lake: ParquetLake, table: str, keys: list[str],
                   cache: LiveFileCache | None = None) -> str | None:
    """Read ``keys`` (:func:`read_tables`) and register them in ``connection`` as ``{table}_objects``;
    ``SELECT ...`` of it like :func:`table_select`'s, or None when there is nothing."""
    rows = read_tables(lake, keys, cache=cache)
    if rows is None:
        return None
    name = f"{table}_objects"
    connection.register(name, rows)
    return f"SELECT * FROM {name}"


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
