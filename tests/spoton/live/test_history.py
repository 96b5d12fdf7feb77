"""The live history writer: files under the lake's contracts, flushed by time, size and session end,
atomic, and bounded in memory while the store refuses writes."""
from __future__ import annotations

import io
import threading

import numpy as np
import pyarrow.parquet as pq
import pytest

from spoton.live.history import HistoryConfig, LiveHistoryWriter
from spoton.records import CameraFrameResult, Detections, Tracks
from spoton.storage.catalog import build_catalog, query
from spoton.storage.lake import ParquetLake, is_live_key
from spoton.storage.schemas import CAMERA_TRACKS, MAP_TRAJECTORIES
from spoton.storage.store import LocalStore, StoreError

T0 = 1_764_720_000.0  # 2025-12-03 UTC


def result(camera: str, n: int, map_ok: bool = True, frame_index: int = 0) -> CameraFrameResult:
    xyxy = np.array([[10 + i, 20, 50 + i, 120] for i in range(n)], np.float32).reshape(n, 4)
    tracks = Tracks(xyxy, np.arange(1, n + 1), np.full(n, 0.9), np.zeros(n), np.arange(n))
    map_xy = np.array([[1.0 + i, 2.0] for i in range(n)]).reshape(n, 2) if map_ok else np.full((n, 2), np.nan)
    return CameraFrameResult(camera, frame_index, 0.0, (640, 480), Detections.empty(), tracks, map_xy)


def instant(writer, session="s-a", n=3, ts=T0, cameras=("c1", "c2"), map_ok=True):
    results = {c: result(c, n, map_ok) for c in cameras}
    writer.append(session, "env", results, {c: np.arange(1, n + 1) for c in cameras}, {c: ts for c in cameras})


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def tables(store, name):
    lake = ParquetLake(store)
    return [pq.read_table(io.BytesIO(store.read_bytes(k))) for k in lake.live_keys(name)]


def test_end_session_writes_contract_files_the_catalog_unions_with_batch(tmp_path):
    store = LocalStore(tmp_path / "lake")
    lake = ParquetLake(store)
    batch = CAMERA_TRACKS.empty_frame()
    lake.write("camera_tracks", CAMERA_TRACKS.table(batch), "env")
    writer = LiveHistoryWriter(store, HistoryConfig(flush_interval_s=3600))
    instant(writer, ts=T0)
    instant(writer, ts=T0 + 0.1, map_ok=False)
    assert not lake.live_keys("camera_tracks")  # nothing before a flush
    writer.end_session("s-a")
    keys = lake.live_keys("camera_tracks")
    assert keys == [f"camera_tracks/live/env/2025-12-03/s-a-000001-{int(T0)}-{int(T0) + 1}.parquet"]  # seconds spanned
    assert all(map(is_live_key, keys))
    [tracks] = tables(store, "camera_tracks")
    CAMERA_TRACKS.check(tracks, stored=True)
    assert tracks.num_rows == 12 and set(tracks["source"].to_pylist()) == {"live"}
    assert tracks["tracklet_id"][0].as_py() == "c1/s-a/1.0" and tracks["map_x"].null_count == 6
    [paths] = tables(store, "map_trajectories")
    MAP_TRAJECTORIES.check(paths, stored=True)
    # only the first instant had map positions: 3 identities, each seen by both cameras
    assert paths.num_rows == 3 and paths["n_cameras"].to_pylist() == [2, 2, 2]
    assert lake.segments("camera_tracks", "env") == []  # live files are no segments

    build_catalog(lake, tmp_path / "c.duckdb")
    _, rows = query(tmp_path / "c.duckdb", "select source, session_id, count(*) from camera_tracks group by all")
    assert rows == [("live", "s-a", 12)]
    writer.close()


def test_flush_by_time_and_by_size(tmp_path):
    store, clock = LocalStore(tmp_path), Clock()
    writer = LiveHistoryWriter(store, HistoryConfig(flush_interval_s=2.0, max_rows_per_file=10), clock=clock)
    instant(writer, n=2)  # 4 boxes: below the size bound, before the interval
    assert not ParquetLake(store).live_keys("camera_tracks")
    clock.now = 2.5
    writer._wake.set()  # the thread's timed wait ends (on a real clock it would end by itself)
    _wait(lambda: len(ParquetLake(store).live_keys("camera_tracks")) == 1)  # by time
    instant(writer, n=3)
    instant(writer, n=3)  # 12 boxes >= 10: flushed without waiting for the interval
    _wait(lambda: len(ParquetLake(store).live_keys("camera_tracks")) == 2)
    assert [t.num_rows for t in tables(store, "camera_tracks")] == [4, 12]
    writer.close()
    assert writer.stats.files_written == 4 and writer.stats.rows_written == 16


def _wait(condition, timeout=5.0):
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("condition not met in time")


class FailingStore(LocalStore):
    """A store whose disk is full until ``fail`` is cleared."""

    fail = True

    def write_bytes(self, key, data):
        if self.fail:
            raise StoreError(f"could not write {key!r} to the store: No space left on device")
        super().write_bytes(key, data)


def test_write_failures_keep_bounded_data_then_retry(tmp_path, caplog):
    store = FailingStore(tmp_path)
    failures = []
    writer = LiveHistoryWriter(store, HistoryConfig(flush_interval_s=3600, max_rows_per_file=7, max_pending_rows=18),
                               on_failure=failures.append)
    for k in range(5):  # 5 flushes of 6 boxes: 30 > 18, the oldest files go
        instant(writer, ts=T0 + k, n=3)
        writer.flush()
    assert writer.stats.pending_rows == 18 and writer.stats.rows_dropped == 12
    assert writer.stats.write_failures == 5 and len(failures) == 5
    assert sum("could not write" in r.message for r in caplog.records) == 1  # logged once per failure run
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing partial
    store.fail = False
    writer.end_session("s-a")
    ts = sorted({t for table in tables(store, "camera_tracks") for t in table["ts"].to_pylist()})
    assert ts == [T0 + 2, T0 + 3, T0 + 4]  # the newest kept, in order
    assert writer.stats.pending_rows == 0 and writer.stats.rows_written == 18
    writer.close()


def test_a_failed_local_write_is_kept_and_retried(tmp_path):
    """The real local store failing (a file where the date folder must go): nothing written, the
    data kept; once the obstacle is gone the next flush writes it."""
    store = LocalStore(tmp_path)
    blocker = tmp_path / "camera_tracks/live/env/2025-12-03"
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"not a folder")
    writer = LiveHistoryWriter(store, HistoryConfig(flush_interval_s=3600))
    instant(writer)
    writer.end_session("s-a")
    assert writer.stats.write_failures == 1 and writer.stats.pending_rows == 6
    assert not ParquetLake(store).live_keys("camera_tracks")
    blocker.unlink()
    writer.flush()
    assert writer.stats.pending_rows == 0 and len(tables(store, "camera_tracks")) == 1
    writer.close()


def test_config_is_checked():
    with pytest.raises(ValueError, match="max_rows_per_file"):
        HistoryConfig(max_rows_per_file=10, max_pending_rows=5)


class HangingStore(LocalStore):
    """A store whose writes hang (an S3 server that stopped answering) until released."""

    def __init__(self, root):
        super().__init__(root)
        self.release, self.entered = threading.Event(), threading.Event()

    def write_bytes(self, key, data):
        self.entered.set()
        self.release.wait(10)
        super().write_bytes(key, data)


def test_memory_stays_bounded_while_a_write_hangs(tmp_path):
    store = HangingStore(tmp_path)
    writer = LiveHistoryWriter(store, HistoryConfig(flush_interval_s=3600, max_rows_per_file=12, max_pending_rows=60))
    instant(writer, ts=T0)
    instant(writer, ts=T0 + 0.1)  # 12 boxes: the writer thread seals them and hangs in the write
    assert store.entered.wait(5)
    for k in range(2, 50):  # the session goes on: 96 instants' boxes more than the bound holds
        instant(writer, ts=T0 + k / 10)
        assert writer.stats.pending_rows + writer._buffered_rows <= 60
    assert writer.stats.rows_dropped >= 200
    store.release.set()
    writer.close()
    kept = sorted({t for table in tables(store, "camera_tracks") for t in table["ts"].to_pylist()})
    assert kept[-1] == pytest.approx(T0 + 4.9)  # the newest instants are the ones kept
    assert writer.stats.rows_written + writer.stats.rows_dropped == 50 * 6
