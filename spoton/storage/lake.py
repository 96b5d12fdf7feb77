"""The Parquet lake: one file per (table, partition) in an object store.

Layout: ``{table}/{environment}/{segment}.parquet`` for per-segment tables and
``{table}/{environment}.parquet`` for environment-level ones. Every file carries
``environment`` (and ``segment``) columns, so a glob over a table is the whole
table. Re-writing a partition replaces its file atomically: no duplicates, no
partial file visible.

Tables that live sessions append to (``TableContract.live``: camera_tracks, map_trajectories) also
get small append-only files ``{table}/live/{environment}/{YYYY-MM-DD}/{session}-{seq}-{first}-{last}.parquet``
(:func:`live_key`, written by ``spoton.live.history``; ``first``/``last``: the unix seconds its rows
span, so a time window skips files unread); their rows say ``source = 'live'``, the
batch partition's rows ``'batch'``. A glob over ``{table}/**/*.parquet`` reads both.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from spoton.storage.schemas import TABLES
from spoton.storage.store import ObjectStore, StoreError

LIVE = "live"  # the folder of live files inside a live table's folder


def partition_key(table: str, environment: str, segment: str | None = None) -> str:
    return f"{table}/{environment}/{segment}.parquet" if segment else f"{table}/{environment}.parquet"


def live_key(table: str, environment: str, date: str, session_id: str, seq: int,
             span_s: tuple[float, float] | None = None) -> str:
    """Key of a live session's ``seq``-th file of ``table``; ``date`` (YYYY-MM-DD, UTC) of its first row;
    ``span_s``: the unix seconds of its first and last rows, named in whole seconds (rounded outward)."""
    span = f"-{math.floor(span_s[0])}-{math.ceil(span_s[1])}" if span_s is not None else ""
    return f"{table}/{LIVE}/{environment}/{date}/{session_id}-{seq:06d}{span}.parquet"


_LIVE_NAME = re.compile(r"(?P<session>.+)-(?P<seq>\d{6})(?:-(?P<first>\d+)-(?P<last>\d+))?\.parquet")


@dataclass(frozen=True)
class LiveFileName:
    """What a live file's name says: its session, its number and (files written since names carried
    it) the whole unix seconds its rows span."""

    session_id: str
    seq: int
    span_s: tuple[int, int] | None

    @classmethod
    def parse(cls, key: str) -> "LiveFileName | None":
        """The name of a :func:`live_key`; None for a name no writer gives."""
        match = _LIVE_NAME.fullmatch(key.rsplit("/", 1)[-1])
        if match is None:
            return None
        span = (int(match["first"]), int(match["last"])) if match["first"] is not None else None
        return cls(match["session"], int(match["seq"]), span)

    def may_overlap(self, from_s: float | None, to_s: float | None) -> bool:
        """Whether rows in ``[from_s, to_s)`` can be in the file (always, when the name has no span)."""
        if self.span_s is None:
            return True
        return (from_s is None or self.span_s[1] >= from_s) and (to_s is None or self.span_s[0] < to_s)


def is_live_key(key: str) -> bool:
    parts = key.split("/")
    return len(parts) == 5 and parts[1] == LIVE and parts[0] in TABLES and TABLES[parts[0]].live


def _with_partition_columns(table: pa.Table, table_name: str, environment: str, segment: str | None) -> pa.Table:
    """``environment`` (and ``segment``) in front; a live table's ``source``/``session_id`` after them
    (a batch write: ``batch`` and null)."""
    columns = {"environment": environment} | ({"segment": segment} if segment else {})
    contract = TABLES.get(table_name)
    if contract is not None and contract.live:
        columns |= {"source": "batch", "session_id": None}
    for position, (name, value) in enumerate(columns.items()):
        if name in table.column_names:
            table = table.drop_columns(name)
        table = table.add_column(position, pa.field(name, pa.string(), nullable=value is None),
                                 pa.array([value] * table.num_rows, pa.string()))
    return table


class ParquetLake:
    def __init__(self, store: ObjectStore):
        self.store = store

    def write(self, table_name: str, table: pa.Table, environment: str, segment: str | None = None) -> str:
        key = partition_key(table_name, environment, segment)
        buffer = io.BytesIO()
        pq.write_table(_with_partition_columns(table, table_name, environment, segment), buffer, compression="zstd")
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

    def live_keys(self, table_name: str, environment: str | None = None) -> list[str]:
        """The live sessions' files of ``table_name`` (of one environment, or all)."""
        prefix = f"{table_name}/{LIVE}/" + (f"{environment}/" if environment else "")
        return [k for k in self.store.list_keys(prefix) if k.endswith(".parquet") and is_live_key(k)]

    def segments(self, table_name: str, environment: str) -> list[str]:
        """The segments of ``environment`` that per-segment table ``table_name`` has files for."""
        prefix = f"{table_name}/{environment}/"
        return sorted(k[len(prefix):-len(".parquet")] for k in self.keys(table_name)
                      if k.startswith(prefix) and "/" not in k[len(prefix):])

    def tables(self) -> list[str]:
        return sorted({k.split("/", 1)[0] for k in self.store.list_keys() if k.endswith(".parquet")})

    def local_root(self) -> Path | None:
        """The lake's folder when it is on local disk (DuckDB reads it in place)."""
        root = getattr(self.store, "root", None)
        return Path(root) if root is not None else None
