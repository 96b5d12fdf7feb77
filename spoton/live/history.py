"""Live history: what live sessions see, appended to the lake as small atomic Parquet files.

A session hands every processed instant to :meth:`LiveHistoryWriter.append` (cheap: it keeps
references to the result arrays, which are immutable). A background thread turns each session's
buffer into two tables, ``camera_tracks`` (one row per tracked box) and ``map_trajectories``
(one row per identity per instant: the median of its cameras' map positions), under the lake
tables' own contracts with ``source = 'live'``, and writes them through the store's atomic put
(:func:`spoton.storage.lake.live_key`): every ``flush_interval_s``, as soon as a buffer holds
``max_rows_per_file`` boxes, and when the session ends.

A failed write (a full disk, S3 down) never reaches the session: it is logged (once per run of
failures), counted, and the file is kept to retry at the next flush, up to ``max_pending_rows``
boxes in memory all told; beyond that the oldest files are dropped (counted in ``rows_dropped``).
"""
from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spoton.records import CameraFrameResult
from spoton.storage.lake import live_key
from spoton.storage.schemas import CAMERA_TRACKS, MAP_TRAJECTORIES
from spoton.storage.store import ObjectStore, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryConfig:
    flush_interval_s: float = 5.0  # a session's rows reach the lake within about this
    max_rows_per_file: int = 20_000  # boxes: a buffer this full is flushed at once
    max_pending_rows: int = 200_000  # boxes kept in memory while writes fail; older files are dropped

    def __post_init__(self):
        if self.flush_interval_s <= 0 or self.max_rows_per_file < 1 or self.max_pending_rows < self.max_rows_per_file:
            raise ValueError("history needs flush_interval_s > 0 and 1 <= max_rows_per_file <= max_pending_rows, "
                             f"got {self}")


@dataclass
class HistoryStats:
    """Counters for metrics: files and rows written, failed writes, rows given up on."""

    files_written: int = 0
    rows_written: int = 0
    write_failures: int = 0
    rows_dropped: int = 0
    pending_rows: int = 0


@dataclass
class _Instant:
    """One processed instant of a session: per camera, its result, global ids and capture time."""

    results: Mapping[str, CameraFrameResult]
    global_ids: Mapping[str, np.ndarray]
    captured_unix_s: Mapping[str, float]
    rows: int


@dataclass
class _Buffer:
    environment: str
    instants: list[_Instant] = field(default_factory=list)
    rows: int = 0
    seq: int = 0


@dataclass
class _File:
    key: str
    data: bytes
    rows: int  # boxes (camera_tracks rows), what the memory bound counts


class LiveHistoryWriter:
    """Buffers live sessions' tracks and writes them to the lake; see the module docstring.

    Thread-safe: sessions call :meth:`append` and :meth:`end_session` from their own threads.
    ``on_failure`` (optional) is called once per failed write with the error (for a metric).
    """

    def __init__(self, store: ObjectStore, config: HistoryConfig = HistoryConfig(), *,
                 on_failure: Callable[[Exception], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.config = config
        self.on_failure = on_failure
        self.clock = clock
        self.stats = HistoryStats()
        self._buffers: dict[str, _Buffer] = {}
        self._buffered_rows = 0  # boxes in buffers, not yet built into files
        self._pending: deque[_File] = deque()  # built, not yet written (oldest first)
        self._lock = threading.Lock()  # buffers, pending and stats
        self._write_lock = threading.Lock()  # one writer of pending files at a time
        self._failing = False
        self._last_flush = clock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what sessions call ---------------------------------------------------------------
    def append(self, session_id: str, environment: str, results: Mapping[str, CameraFrameResult],
               global_ids: Mapping[str, np.ndarray], captured_unix_s: Mapping[str, float]) -> None:
        """Keep one processed instant; never blocks on IO."""
        rows = sum(len(result.tracks) for result in results.values())
        if not rows:
            return
        with self._lock:
            buffer = self._buffers.setdefault(session_id, _Buffer(environment))
            buffer.instants.append(_Instant(dict(results), dict(global_ids), dict(captured_unix_s), rows))
            buffer.rows += rows
            self._buffered_rows += rows
            self._bound()
            full = buffer.rows >= self.config.max_rows_per_file
        self._start()
        if full:
            self._wake.set()

    def end_session(self, session_id: str, wait_s: float = 5.0) -> None:
        """Write what the session still buffers (and anything pending) now, in the caller's thread;
        if another write has hung for ``wait_s``, leave it to the background thread."""
        self._seal([session_id], forget=True)
        if not self._write_pending(wait_s):
            self._start()
            self._wake.set()

    def flush(self) -> None:
        """Write every buffer and pending file now (the background thread does this periodically)."""
        self._last_flush = self.clock()
        self._seal(list(self._buffers))
        self._write_pending()

    def close(self) -> None:
        """Stop the background thread after a last flush."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        self.flush()

    # --- inside ---------------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None and not self._closed.is_set():
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="live-history", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(max(0.05, self.config.flush_interval_s - (self.clock() - self._last_flush)))
            self._wake.clear()
            if self._closed.is_set():
                return
            try:
                if self.clock() - self._last_flush >= self.config.flush_interval_s:
                    self.flush()
                else:  # woken by a full buffer
                    self._seal([s for s, b in list(self._buffers.items()) if b.rows >= self.config.max_rows_per_file])
                    self._write_pending()
            except Exception:  # keep flushing later ones
                log.exception("live history: flush failed")

    def _seal(self, session_ids: list[str], forget: bool = False) -> None:
        """Turn sessions' buffers into pending files (built outside the lock: appends never wait on
        Parquet encoding); ``forget``: the sessions ended (their file numbers are not needed again)."""
        for session_id in session_ids:
            with self._lock:
                buffer = self._buffers.pop(session_id, None) if forget else self._buffers.get(session_id)
                if buffer is None or not buffer.instants:
                    continue
                instants, rows = buffer.instants, buffer.rows
                buffer.instants, buffer.rows = [], 0
                self._buffered_rows -= rows
                buffer.seq += 1
                seq = buffer.seq
            try:
                first = min(min(i.captured_unix_s.values()) for i in instants)
                last = max(max(i.captured_unix_s.values()) for i in instants)
                date = datetime.fromtimestamp(first, timezone.utc).strftime("%Y-%m-%d")
                files = [_File(live_key(name, buffer.environment, date, session_id, seq, (first, last)), _parquet(table),
                               rows if name == CAMERA_TRACKS.name else 0)
                         for name, table in live_tables(session_id, buffer.environment, instants).items()]
            except Exception:  # a bug here must not stop the session or the writer: lose these rows, say so
                log.exception("live history: could not build the files of session %s; %d boxes dropped",
                              session_id, rows)
                with self._lock:
                    self.stats.rows_dropped += rows
                continue
            with self._lock:
                self._pending.extend(files)
                self.stats.pending_rows += rows
                self._bound()

    def _bound(self) -> None:
        """Keep at most ``max_pending_rows`` boxes in memory (under the lock): drop the oldest pending
        files first, then, while a write hangs (the file in flight stays), the oldest instants of the
        biggest buffer."""
        while self.stats.pending_rows + self._buffered_rows > self.config.max_pending_rows:
            if self._pending:
                dropped = self._pending.popleft().rows
                self.stats.pending_rows -= dropped
            else:
                buffer = max(self._buffers.values(), key=lambda b: b.rows, default=None)
                if buffer is None or not buffer.instants:
                    return
                dropped = buffer.instants.pop(0).rows
                buffer.rows -= dropped
                self._buffered_rows -= dropped
            self.stats.rows_dropped += dropped

    def _write_pending(self, wait_s: float = -1) -> bool:
        """Write pending files oldest first; on the first failure keep it and the rest for the next flush.
        The file in flight is off the queue (still counted in ``pending_rows``), so it is never dropped.
        False when another write held the writing for ``wait_s`` (-1: wait as long as it takes)."""
        if not self._write_lock.acquire(timeout=wait_s):
            return False
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        return True
                    file = self._pending.popleft()
                try:
                    self.store.write_bytes(file.key, file.data)
                except (StoreError, OSError) as exc:
                    with self._lock:
                        self._pending.appendleft(file)
                        self.stats.write_failures += 1
                        self._bound()
                    if not self._failing:
                        log.error("live history: could not write %s (%s); keeping up to %d boxes to retry",
                                  file.key, exc, self.config.max_pending_rows)
                    self._failing = True
                    if self.on_failure is not None:
                        self.on_failure(exc)
                    return True
                with self._lock:
                    self.stats.pending_rows -= file.rows
                    self.stats.files_written += 1
                    self.stats.rows_written += file.rows
                if self._failing:
                    log.info("live history: writing again (%s)", file.key)
                    self._failing = False
        finally:
            self._write_lock.release()


def live_tables(session_id: str, environment: str, instants: list[_Instant]) -> dict[str, pa.Table]:
    """``camera_tracks`` and ``map_trajectories`` rows of a session's instants, as lake files (stored
    columns, ``source = 'live'``)."""
    names, times, counts, gids, track_ids, boxes, conf, map_xy = [], [], [], [], [], [], [], []
    for instant in instants:
        for camera, result in instant.results.items():
            tracks = result.tracks
            if len(tracks.track_id):
                names.append(camera)
                times.append(instant.captured_unix_s[camera])
                counts.append(len(tracks.track_id))
                gids.append(instant.global_ids[camera])
                track_ids.append(tracks.track_id)
                boxes.append(tracks.xyxy)
                conf.append(tracks.confidence)
                map_xy.append(result.map_xy)
    camera = pa.array(np.repeat(np.array(names, dtype=object), counts), pa.string())
    xyxy = np.concatenate(boxes).astype(np.float32, copy=False)
    xy = np.concatenate(map_xy).astype(np.float64, copy=False)
    n = len(camera)
    track_text = pc.cast(pa.array(np.concatenate(track_ids).astype(np.int64, copy=False)), pa.string())
    tracklet = pc.binary_join_element_wise(camera, session_id, pc.binary_join_element_wise(track_text, "0", "."), "/")
    common = {"environment": pa.array([environment] * n, pa.string()), "source": pa.array(["live"] * n, pa.string()),
              "session_id": pa.array([session_id] * n, pa.string())}
    tracks = {**common, "camera": camera, "global_frame": pa.nulls(n, pa.int64()),
              "ts": np.repeat(np.asarray(times, np.float64), counts),
              "global_id": np.concatenate(gids).astype(np.int64, copy=False), "tracklet_id": tracklet,
              "x1": xyxy[:, 0], "y1": xyxy[:, 1], "x2": xyxy[:, 2], "y2": xyxy[:, 3],
              "conf": np.concatenate(conf).astype(np.float32, copy=False),
              "map_x": pa.array(xy[:, 0], from_pandas=True), "map_y": pa.array(xy[:, 1], from_pandas=True),
              "interpolated": np.zeros(n, bool)}
    camera_tracks = _stored(CAMERA_TRACKS, tracks)
    located = pl.from_arrow(camera_tracks.select(["ts", "global_id", "camera", "map_x", "map_y"])).drop_nulls()
    fused = (located.group_by("global_id", "ts")
             .agg(pl.col("map_x").median(), pl.col("map_y").median(),
                  n_cameras=pl.col("camera").n_unique().cast(pl.Int64))
             .sort("ts", "global_id"))
    m = fused.height
    trajectories = {"environment": pa.array([environment] * m, pa.string()),
                    "source": pa.array(["live"] * m, pa.string()), "session_id": pa.array([session_id] * m, pa.string()),
                    "global_id": fused["global_id"].to_arrow(), "ts": fused["ts"].to_arrow(),
                    "map_x": fused["map_x"].to_arrow(), "map_y": fused["map_y"].to_arrow(),
                    "n_cameras": fused["n_cameras"].to_arrow(), "speed_mps": pa.nulls(m, pa.float64())}
    return {CAMERA_TRACKS.name: camera_tracks, MAP_TRAJECTORIES.name: _stored(MAP_TRAJECTORIES, trajectories)}


def _stored(contract, columns: dict) -> pa.Table:
    schema = pa.schema([c.field for c in contract.stored_columns], metadata={"spoton.table": contract.name})
    table = pa.Table.from_arrays([pa.array(columns[f.name], f.type) if not isinstance(columns[f.name], pa.Array)
                                  else columns[f.name].cast(f.type) for f in schema], schema=schema)
    return contract.check(table, stored=True)


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
