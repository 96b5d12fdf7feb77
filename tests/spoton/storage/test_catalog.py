"""Reading a lake DuckDB cannot glob (S3): the keys a query can need, the objects read into one table as
the catalog's views read files, and the incremental mirror that follows re-materializing and retention."""
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spoton.storage.catalog import LiveFileCache, environment_keys, mirror_lake, read_tables
from spoton.storage.lake import LiveFileName, ParquetLake, live_key
from spoton.storage.schemas import MAP_TRAJECTORIES
from spoton.storage.store import LocalStore

DAY = datetime(2026, 12, 3, tzinfo=timezone.utc).timestamp()


def trajectories(n: int, source: str | None = "live", session: str | None = "s1") -> pa.Table:
    table = MAP_TRAJECTORIES.table(pd.DataFrame({"global_id": range(n), "ts": [DAY + i for i in range(n)],
                                                 "map_x": [0.0] * n, "map_y": [0.0] * n, "n_cameras": [1] * n,
                                                 "speed_mps": [None] * n}))
    table = table.add_column(0, "environment", pa.array(["env"] * n))
    if source is not None:
        table = table.append_column("source", pa.array([source] * n)).append_column("session_id", pa.array([session] * n))
    return table


def put(store: LocalStore, key: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    store.write_bytes(key, sink.getvalue().to_pybytes())


def lake_with_sources(root) -> ParquetLake:
    store = LocalStore(root)
    lake = ParquetLake(store)
    lake.write("map_trajectories", MAP_TRAJECTORIES.table(trajectories(3, None).drop_columns("environment").to_pandas()),
               "env")
    put(store, "map_trajectories/other.parquet", trajectories(2, None))
    put(store, live_key("map_trajectories", "env", "2026-12-03", "s1", 1), trajectories(4, "live", "s1"))
    put(store, live_key("map_trajectories", "env", "2026-12-03", "s-1", 1), trajectories(1, "live", "s-1"))
    put(store, live_key("map_trajectories", "env", "2026-11-20", "s1", 2), trajectories(1, "live", "s1"))
    return lake


def test_keys_are_pruned_by_environment_source_session_and_date_folder(tmp_path):
    lake = lake_with_sources(tmp_path)
    every = environment_keys(lake, "map_trajectories", "env")
    assert sorted(every) == ["map_trajectories/env.parquet",
                             "map_trajectories/live/env/2026-11-20/s1-000002.parquet",
                             "map_trajectories/live/env/2026-12-03/s-1-000001.parquet",
                             "map_trajectories/live/env/2026-12-03/s1-000001.parquet"]
    assert environment_keys(lake, "map_trajectories", "env", source="batch") == ["map_trajectories/env.parquet"]
    assert sorted(environment_keys(lake, "map_trajectories", "env", session_id="s1")) == [
        "map_trajectories/live/env/2026-11-20/s1-000002.parquet", "map_trajectories/live/env/2026-12-03/s1-000001.parquet"]
    assert environment_keys(lake, "map_trajectories", "env", source="live", from_s=DAY + 3600, to_s=DAY + 7200) == [
        "map_trajectories/live/env/2026-12-03/s-1-000001.parquet", "map_trajectories/live/env/2026-12-03/s1-000001.parquet"]
    assert environment_keys(lake, "map_trajectories", "env", source="live", to_s=DAY - 86400 * 5) == [
        "map_trajectories/live/env/2026-11-20/s1-000002.parquet"]


def test_live_files_that_name_their_span_are_pruned_to_the_window(tmp_path):
    lake = lake_with_sources(tmp_path)
    minute = [live_key("map_trajectories", "env", "2026-12-03", "s-2", seq, (DAY + 60 * seq + 0.4, DAY + 60 * seq + 59.6))
              for seq in range(1, 4)]  # three files of session s-2: minutes 1, 2 and 3 of the day
    for key in minute:
        put(lake.store, key, trajectories(1, "live", "s-2"))
    assert minute[0].endswith(f"/s-2-000001-{int(DAY) + 60}-{int(DAY) + 120}.parquet")  # seconds rounded outward
    window = environment_keys(lake, "map_trajectories", "env", source="live", from_s=DAY + 125, to_s=DAY + 130)
    assert [k for k in window if "/s-2-" in k] == [minute[1]]  # the older names (no span) stay in: a superset
    assert environment_keys(lake, "map_trajectories", "env", session_id="s-2", from_s=DAY + 120, to_s=DAY + 180) == [
        minute[0], minute[1]]  # the first file's span, rounded up, reaches the window's start: kept; the third
    # starts at the window's (open) end: left out
    assert environment_keys(lake, "map_trajectories", "env", session_id="s-2", from_s=DAY + 241) == []
    assert LiveFileName.parse(minute[2]) == LiveFileName("s-2", 3, (int(DAY) + 180, int(DAY) + 240))
    assert LiveFileName.parse("map_trajectories/live/env/2026-12-03/s-1-000001.parquet") == LiveFileName("s-1", 1, None)
    assert LiveFileName.parse("map_trajectories/live/env/2026-12-03/notes.txt") is None


def test_objects_read_into_one_table_with_source_and_session_as_the_views_have_them(tmp_path):
    lake = lake_with_sources(tmp_path)
    store = lake.store
    put(store, "map_trajectories/old.parquet", trajectories(2, None).set_column(0, "environment", pa.array(["old"] * 2)))
    table = read_tables(lake, ["map_trajectories/env.parquet", "map_trajectories/old.parquet",
                               "map_trajectories/live/env/2026-12-03/s1-000001.parquet", "map_trajectories/gone.parquet"])
    rows = table.to_pandas()
    assert len(rows) == 3 + 2 + 4  # the missing key (deleted meanwhile) is skipped
    assert rows.groupby("source").size().to_dict() == {"batch": 5, "live": 4}
    assert rows.loc[rows.source == "batch", "session_id"].isna().all()
    assert read_tables(lake, []) is None


def test_the_mirror_adds_new_files_replaces_changed_ones_and_drops_deleted_ones(tmp_path):
    lake = lake_with_sources(tmp_path / "lake")
    mirror = tmp_path / "mirror"
    mirror_lake(lake, mirror)
    assert sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*.parquet")) == lake.keys("map_trajectories")
    lake.write("map_trajectories", MAP_TRAJECTORIES.table(trajectories(7, None).drop_columns("environment").to_pandas()),
               "env")  # re-materialized: same key, new rows
    gone = live_key("map_trajectories", "env", "2026-11-20", "s1", 2)
    lake.store.delete(gone)  # retention
    mirror_lake(lake, mirror)
    assert pq.read_table(mirror / "map_trajectories/env.parquet").num_rows == 7
    assert not (mirror / gone).exists() and not list(mirror.rglob("*.part"))
    assert sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*.parquet")) == lake.keys("map_trajectories")


def test_the_mirror_downloads_only_what_changed(tmp_path):
    lake = lake_with_sources(tmp_path / "lake")
    mirror = tmp_path / "mirror"
    mirror_lake(lake, mirror)
    read = []
    reading = lake.store.read_bytes
    lake.store.read_bytes = lambda key: read.append(key) or reading(key)
    mirror_lake(lake, mirror)
    assert read == []  # nothing changed: batch partitions are compared by ETag, live files by name
    lake.write("map_trajectories", MAP_TRAJECTORIES.table(trajectories(5, None).drop_columns("environment").to_pandas()),
               "env")
    new_live = live_key("map_trajectories", "env", "2026-12-03", "s1", 9)
    put(lake.store, new_live, trajectories(2, "live", "s1"))
    mirror_lake(lake, mirror)
    assert sorted(read) == ["map_trajectories/env.parquet", new_live]
    assert pq.read_table(mirror / "map_trajectories/env.parquet").num_rows == 5
    (mirror / "map_trajectories/other.parquet").unlink()  # a mirror file lost locally is copied again
    read.clear()
    mirror_lake(lake, mirror)
    assert read == ["map_trajectories/other.parquet"]


def test_the_live_file_cache_keeps_live_files_within_its_bytes_least_recently_used_out():
    one = trajectories(100)
    cache = LiveFileCache(int(one.nbytes * 2.5))
    keys = [live_key("map_trajectories", "env", "2026-12-03", "s1", seq) for seq in (1, 2, 3)]
    cache.put(keys[0], one)
    cache.put(keys[1], one)
    assert cache.get(keys[0]) is one  # now the most recent
    cache.put(keys[2], one)  # over the bound: the least recently used (keys[1]) goes
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is one and cache.get(keys[2]) is one
    cache.put("map_trajectories/env.parquet", one)  # a batch partition can be replaced: never cached
    assert cache.get("map_trajectories/env.parquet") is None
