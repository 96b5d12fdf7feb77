"""The Parquet lake: one file per (table, partition) in an object store.

Layout: ``{table}/{environment}/{segment}.parquet`` for per-segment tables and
``{table}/{environment}.parquet`` for environment-level ones. Every file carries
``environment`` (and ``segment``) columns, so a glob over a table is the whole
table. Re-writing a partition replaces its file atomically: no duplicates, no
partial file visible.
"""
from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from spoton.storage.store import ObjectStore, StoreError


def partition_key(table: str, environment: str, segment: str | None = None) -> str:
    return f"{table}/{environment}/{segment}.parquet" if segment else f"{table}/{environment}.parquet"


def _with_partition_columns(table: pa.Table, environment: str, segment: str | None) -> pa.Table:
    columns = {"environment": environment} | ({"segment": segment} if segment else {})
    for position, (name, value) in enumerate(columns.items()):
        if name in table.column_names:
            table = table.drop_columns(name)
        table = table.add_column(position, pa.field(name, pa.string(), nullable=False),
                                 pa.array([value] * table.num_rows, pa.string()))
    return table


class ParquetLake:
    def __init__(self, store: ObjectStore):
        self.store = store

    def write(self, table_name: str, table: pa.Table, environment: str, segment: str | None = None) -> str:
        key = partition_key(table_name, environment, segment)
        buffer = io.BytesIO()
        pq.write_table(_with_partition_columns(table, environment, segment), buffer, compression="zstd")
        try:
            self.store.write_bytes(key, buffer.getvalue())
        except StoreError as exc:
            raise StoreError(f"{table_name} partition {environment}{'/' + segment if segment else ''} "
                             f"was not written: {exc}") from exc
        return key

    def read(self, table_name: str, environment: str, segment: str | None = None) -> pa.Table:
        key = partition_key(table_name, environment, segment)
        try:
            return pq.read_table(io.BytesIO(self.store.read_bytes(key)))
        except StoreError:
            raise StoreError(
                f"{table_name} has no data for {environment}{'/' + segment if segment else ''}: "
                f"materialize that partition of {table_name} first") from None

    def read_many(self, table_name: str, environment: str, segments: list[str]) -> pa.Table:
        tables = [self.read(table_name, environment, s) for s in sorted(segments)]
        return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})

    def keys(self, table_name: str) -> list[str]:
        return [k for k in self.store.list_keys(table_name + "/") if k.endswith(".parquet")]

    def segments(self, table_name: str, environment: str) -> list[str]:
        """The segments of ``environment`` that per-segment table ``table_name`` has files for."""
        prefix = f"{table_name}/{environment}/"
        return sorted(k[len(prefix):-len(".parquet")] for k in self.keys(table_name) if k.startswith(prefix))

    def tables(self) -> list[str]:
        return sorted({k.split("/", 1)[0] for k in self.store.list_keys() if k.endswith(".parquet")})

    def local_root(self) -> Path | None:
        """The lake's folder when it is on local disk (DuckDB reads it in place)."""
        root = getattr(self.store, "root", None)
        return Path(root) if root is not None else None
