"""Retention over a real lake and store: expired live files and uploads go, fresh ones and every
batch partition stay, and the run's record lists exactly what went."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from spoton.storage.lake import ParquetLake, live_key
from spoton.storage.retention import apply_retention, expired, retention_log_table
from spoton.storage.schemas import CAMERA_TRACKS, RETENTION_LOG
from spoton.storage.store import LocalStore

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def stores(tmp_path):
    lake, store = LocalStore(tmp_path / "lake"), LocalStore(tmp_path / "store")
    ParquetLake(lake).write("camera_tracks", CAMERA_TRACKS.table(CAMERA_TRACKS.empty_frame()), "env")  # batch
    lake.write_bytes("tracklets/env/01.parquet", b"batch")
    for day in ("2026-12-01", "2026-12-02", "2026-12-03", "2026-12-09"):
        for table in ("camera_tracks", "map_trajectories"):
            lake.write_bytes(live_key(table, "env", day, "s-1", 1), b"live")
    for upload, age_days in (("old", 8), ("new", 1)):
        created = (NOW - timedelta(days=age_days)).timestamp()
        store.write_bytes(f"uploads/{upload}/upload.json", json.dumps({"created_unix": created}).encode())
        store.write_bytes(f"uploads/{upload}/video.mp4", b"v")
        store.write_bytes(f"uploads/{upload}/thumbnail.jpg", b"t")
    store.write_bytes("uploads/broken/upload.json", b"{not json")
    store.write_bytes("env/cam1/sub_video_01.mp4", b"batch video")
    return lake, store


def test_expired_go_fresh_and_batch_stay(stores):
    lake, store = stores
    before_lake, before_store = set(lake.list_keys()), set(store.list_keys())
    deleted = apply_retention(lake, store, 7, NOW)
    # cutoff 2026-12-03 12:00: days ending by then (12-01, 12-02) expire, 12-03 ends after it
    live = sorted(d.key for d in deleted if d.kind == "live_history")
    assert live == sorted(live_key(t, "env", day, "s-1", 1) for t in ("camera_tracks", "map_trajectories")
                          for day in ("2026-12-01", "2026-12-02"))
    assert [d.key for d in deleted if d.store == "store"] == [
        "uploads/old/thumbnail.jpg", "uploads/old/video.mp4", "uploads/old/upload.json"]  # the record last
    assert {d.kind for d in deleted} == {"live_history", "upload", "thumbnail"}
    assert set(lake.list_keys()) == before_lake - set(live)
    assert set(store.list_keys()) == before_store - {d.key for d in deleted if d.store == "store"}
    assert "camera_tracks/env.parquet" in lake.list_keys() and "uploads/broken/upload.json" in store.list_keys()
    assert apply_retention(lake, store, 7, NOW) == []  # nothing left to expire

    record = retention_log_table(deleted, 7, NOW)
    RETENTION_LOG.check(record, stored=True)
    assert sorted(record["key"].to_pylist()) == sorted(d.key for d in deleted)
    assert set(record["environment"].to_pylist()) == {"env", ""}


@pytest.mark.parametrize("days", [0, None])
def test_zero_or_unset_keeps_everything(stores, days):
    lake, store = stores
    before = (lake.list_keys(), store.list_keys())
    assert apply_retention(lake, store, days, NOW + timedelta(days=3650)) == []
    assert (lake.list_keys(), store.list_keys()) == before


def test_negative_days_are_refused(stores):
    with pytest.raises(ValueError, match="keep forever"):
        expired(*stores, -1, NOW)
