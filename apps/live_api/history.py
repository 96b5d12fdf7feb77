"""History over what the pipeline and live sessions saw: trajectories, heatmap and zone occupancy.

``GET /api/v1/environments/{env}/trajectories|heatmap|occupancy`` read the lake's
``map_trajectories`` (batch partitions and live sessions' files alike, ``spoton.live.history``)
with DuckDB: an in-memory connection per request that only reads Parquet files, so requests never
share state or lock the catalog. A local lake is globbed in place; a lake on S3 (the API's store on
S3) has the environment's objects, pruned by source, session and date folder, read through the
store into Arrow and registered in the connection (DuckDB's S3 extension is a download). Viewers and up.

Times: the window is ``from <= ts < to``, and the two sources are on different clocks: live rows
carry unix time, batch rows the environment clock (seconds from the recording's start: the
recording's date is not known). So a window needs ``source`` (or ``session_id``, which means live):
for live rows ``from``/``to`` are ISO 8601 (``2026-12-03T10:00:00Z``; no zone means UTC) or unix
milliseconds, for batch rows milliseconds from the recording's start (``from=60000``: its second
minute). Without a window, both sources mix freely (trajectories, heatmap); occupancy's buckets need
one source then too (their span would run from 0 to today).
Global ids are per source: batch ids span the environment, live ids one session (``session_id``).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Literal

import duckdb
import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from spoton import analytics
from spoton.site.model import Environment
from spoton.site.storage import environment_exists, load_environment
from spoton.storage.catalog import LiveFileCache, environment_keys, register_table, table_select
from spoton.storage.lake import ParquetLake
from spoton.storage.store import StoreError, check_name

from apps.live_api.auth import Role, require_role
from apps.live_api.sessions import SessionError

router = APIRouter(prefix="/api/v1/environments", tags=["history"], dependencies=[Depends(require_role(Role.viewer))])

MAX_POINTS = 100_000
MAX_HEATMAP_CELLS = 40_000  # a 200 x 200 grid
MAX_OCCUPANCY_BUCKETS = 10_000  # per zone
MAX_LAKE_OBJECTS = 5_000  # objects one request reads from an S3 lake (a live session writes one per flush)
EnvName = Annotated[str, Path(description="an environment of GET /api/v1/environments")]
TIME_HELP = ("needs source= or session_id=. Live rows: ISO 8601 (no zone: UTC) or unix milliseconds; "
             "batch rows: milliseconds from the recording's start")
From = Annotated[str | None, Query(alias="from", description=f"window start, inclusive: {TIME_HELP}")]
To = Annotated[str | None, Query(alias="to", description=f"window end, exclusive: {TIME_HELP}")]
Source = Annotated[Literal["batch", "live"] | None, Query(description="only batch or only live rows; omitted: both")]
SessionId = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="only this live session's rows")]


class Window(BaseModel):
    from_s: float | None = Field(description="window start, seconds (unix for live rows); null: unbounded")
    to_s: float | None = Field(description="window end, seconds; null: unbounded")


class TrajectoryPoint(BaseModel):
    source: str
    session_id: str | None
    global_id: int
    ts: float = Field(description="seconds: unix time for live rows, the environment clock for batch rows")
    map_x: float
    map_y: float
    n_cameras: int | None


class Trajectories(BaseModel):
    environment: str
    window: Window
    points: list[TrajectoryPoint] = Field(description="ordered by source, session, global id, time")
    truncated: bool = Field(description="true when more than `limit` points matched (the first `limit` are given)")


class HeatmapCell(BaseModel):
    cell_ix: int
    cell_iy: int
    x_m: float = Field(description="floor-plan x of the cell centre, metres")
    y_m: float
    seconds: float = Field(description="person-seconds in the cell")
    people: int = Field(description="distinct identities in the cell (per source and session)")


class Heatmap(BaseModel):
    environment: str
    window: Window
    cell_m: float
    extent_m: list[float] = Field(description="xmin, ymin, xmax, ymax of the grid (the floor plan's bounds)")
    shape: list[int] = Field(description="rows (y cells), columns (x cells)")
    grid: list[list[float]] = Field(description="person-seconds per cell, grid[iy][ix] (iy from ymin)")
    cells: list[HeatmapCell] = Field(description="the visited cells")


class OccupancyBucket(BaseModel):
    zone: str
    t_start: float
    t_end: float
    people: int = Field(description="distinct identities in the zone during the bucket")
    mean_people: float = Field(description="person-seconds in the zone / bucket seconds")


class Occupancy(BaseModel):
    environment: str
    window: Window
    zones: list[str]
    bucket_s: float
    buckets: list[OccupancyBucket]


def parse_time(value: str | None, name: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 time or unix milliseconds; 422 naming the parameter."""
    if value is None or value == "":
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d{1,16}", text):
        return int(text) / 1000.0
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    except (ValueError, OverflowError):
        raise SessionError(422, f"{name}={value[:64]!r} is not a time: give ISO 8601 (e.g. 2026-12-03T10:00:00Z) "
                                "or unix milliseconds (e.g. 1796292000000)") from None


def window(start: str | None, end: str | None, source: str | None, session_id: str | None) -> Window:
    """The ``from``/``to`` window; 422 when its clock is ambiguous (no source) or wrong for batch rows."""
    from_s, to_s = parse_time(start, "from"), parse_time(end, "to")
    given = [(name, value) for name, value in (("from", start), ("to", end)) if value not in (None, "")]
    if given and source is None and session_id is None:
        raise SessionError(422, f"{given[0][0]}= needs source=live or source=batch: live rows are on unix time "
                                "(give ISO 8601 or unix milliseconds), batch rows on the recording's clock "
                                "(give milliseconds from its start, e.g. from=60000)")
    if source == "batch":
        for name, value in given:
            if not re.fullmatch(r"\s*-?\d{1,16}\s*", value):
                raise SessionError(422, f"{name}={value[:64]!r} with source=batch: batch rows are on the recording's "
                                        "clock, whose date is not known; give milliseconds from the recording's start "
                                        "(e.g. from=60000 for its second minute)")
    if from_s is not None and to_s is not None and from_s >= to_s:
        raise SessionError(422, f"from ({start}) must be before to ({end})")
    return Window(from_s=from_s, to_s=to_s)


def _environment(request: Request, name: str) -> Environment:
    """The environment's config from the store; 404 naming how to list them."""
    store = request.app.state.store
    try:
        if environment_exists(store, check_name(name, "environment")):
            return load_environment(store, name)
    except StoreError:
        pass
    raise SessionError(404, f"unknown environment {name[:64]!r}: list them with GET /api/v1/environments")


def trajectory_rows(lake: ParquetLake, environment: str, span: Window, *, source: str | None = None,
                    session_id: str | None = None, global_id: int | None = None,
                    limit: int | None = None, cache: LiveFileCache | None = None) -> pd.DataFrame:
    """``map_trajectories`` rows of the environment in the window (all sources unless one is named);
    ``cache``: decoded live files of an S3 lake, kept between requests."""
    columns = ["source", "session_id", "global_id", "ts", "map_x", "map_y", "n_cameras"]
    table, root = "map_trajectories", lake.local_root()
    with duckdb.connect() as connection:
        if root is not None:
            select = table_select(connection, root, table)
        else:
            try:
                keys = environment_keys(lake, table, environment, source=source, session_id=session_id,
                                        from_s=span.from_s, to_s=span.to_s)
                if len(keys) > MAX_LAKE_OBJECTS:
                    raise SessionError(422, f"this query would read {len(keys)} lake objects from S3 (at most "
                                            f"{MAX_LAKE_OBJECTS}): narrow it with source=live and from/to, or "
                                            "session_id")
                select = register_table(connection, lake, table, keys, cache)
            except StoreError as exc:
                raise SessionError(503, f"could not read the lake ({exc}); retry, or tell an admin to check "
                                        "the lake's S3") from None
        if select is None:
            return pd.DataFrame(columns=columns)
        where, params = ["environment = ?"], [environment]
        for clause, value in (("ts >= ?", span.from_s), ("ts < ?", span.to_s), ("source = ?", source),
                              ("session_id = ?", session_id), ("global_id = ?", global_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = (f"SELECT {', '.join(columns)} FROM ({select}) WHERE {' AND '.join(where)} "
               "ORDER BY source, session_id NULLS FIRST, global_id, ts")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            return connection.execute(sql, params).df()
        except duckdb.IOException as exc:
            raise SessionError(503, f"the lake has an unreadable file ({type(exc).__name__}); retry, or tell an "
                                    "admin to check the lake") from None


def _cache(request: Request) -> LiveFileCache | None:
    """The app's cache of decoded live files (an S3 lake; None: every request reads its objects)."""
    return getattr(request.app.state, "live_file_cache", None)


def _per_person(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with one global id per person across sources and sessions (ids repeat between them)."""
    keys = rows["source"].astype(str) + "/" + rows["session_id"].fillna("").astype(str) + "/" + rows["global_id"].astype(str)
    return rows.assign(global_id=pd.factorize(keys)[0].astype(np.int64))


@router.get("/{environment}/trajectories", response_model=Trajectories)
def trajectories(request: Request, environment: EnvName, start: From = None, end: To = None, source: Source = None,
                 session_id: SessionId = None,
                 global_id: Annotated[int | None, Query(ge=0, le=2**62, description="one identity")] = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 10_000) -> dict:
    """Floor positions (metres) of identities over time, from batch and live data."""
    _environment(request, environment)
    span = window(start, end, source, session_id)
    rows = trajectory_rows(request.app.state.lake, environment, span, cache=_cache(request), source=source,
                           session_id=session_id,
                           global_id=global_id, limit=limit + 1)
    points = rows.head(limit).astype(object).where(rows.head(limit).notna(), None).to_dict("records")
    return {"environment": environment, "window": span, "points": points, "truncated": len(rows) > limit}


@router.get("/{environment}/heatmap", response_model=Heatmap,
            responses={200: {"content": {"image/png": {}}, "description": "JSON grid, or a PNG over the floor plan "
                                                                          "(Accept: image/png or format=png)"}})
def heatmap(request: Request, environment: EnvName, start: From = None, end: To = None, source: Source = None,
            session_id: SessionId = None,
            cell_m: Annotated[float, Query(ge=0.1, le=10.0, description="cell size, metres")] = 0.5,
            format: Annotated[Literal["json", "png"] | None, Query(description="png: the picture (or Accept: image/png)")] = None):
    """Person-seconds per floor cell over the window: a JSON grid, or a PNG over the floor plan."""
    env = _environment(request, environment)
    span = window(start, end, source, session_id)
    plan = env.floor_plan
    extent = tuple(float(v) for v in plan.bounds_m)
    nx, ny = (int(np.ceil((extent[2] - extent[0]) / cell_m - 1e-9)), int(np.ceil((extent[3] - extent[1]) / cell_m - 1e-9)))
    if nx * ny > MAX_HEATMAP_CELLS:
        raise SessionError(422, f"cell_m={cell_m} makes a {nx} x {ny} grid over this floor plan: at most "
                                f"{MAX_HEATMAP_CELLS} cells, so use cell_m >= "
                                f"{np.sqrt((extent[2] - extent[0]) * (extent[3] - extent[1]) / MAX_HEATMAP_CELLS):.2f}")
    rows = trajectory_rows(request.app.state.lake, environment, span, cache=_cache(request), source=source,
                           session_id=session_id)
    cells = (analytics.heatmap(_per_person(rows), extent_m=extent, cell_m=cell_m) if len(rows)
             else pd.DataFrame(columns=list(HeatmapCell.model_fields)))
    if format == "png" or (format is None and "image/png" in request.headers.get("accept", "")):
        store = request.app.state.store
        key = f"{environment}/{plan.image_key}" if plan.image_key else None
        image = store.read_bytes(key) if key and store.exists(key) else None
        png = analytics.heatmap_image(cells, extent, cell_m, image, y_up=plan.y_axis == "up")
        return Response(png, media_type="image/png")
    grid = np.zeros((ny, nx))
    grid[cells["cell_iy"].to_numpy(np.int64), cells["cell_ix"].to_numpy(np.int64)] = cells["seconds"].to_numpy(np.float64)
    return {"environment": environment, "window": span, "cell_m": cell_m, "extent_m": list(extent),
            "shape": [ny, nx], "grid": np.round(grid, 3).tolist(), "cells": cells.to_dict("records")}


@router.get("/{environment}/occupancy", response_model=Occupancy)
def occupancy(request: Request, environment: EnvName, start: From = None, end: To = None, source: Source = None,
              session_id: SessionId = None,
              zone: Annotated[str | None, Query(max_length=128, description="one zone; omitted: every zone")] = None,
              bucket_s: Annotated[float, Query(ge=1.0, le=86_400.0, description="bucket length, seconds")] = 10.0) -> dict:
    """People per zone per time bucket over the window (distinct and time-averaged)."""
    env = _environment(request, environment)
    names = [z.name for z in env.zones]
    if zone is not None and zone not in names:
        raise SessionError(404, f"no zone {zone[:64]!r} in {environment!r}: its zones are {names}"
                           if names else f"no zone {zone[:64]!r}: {environment!r} has no zones (add them with "
                                         f"PUT /api/v1/sites/{environment}/zones)")
    zones = [z for z in env.zones if zone is None or z.name == zone]
    span = window(start, end, source, session_id)
    rows = trajectory_rows(request.app.state.lake, environment, span, cache=_cache(request), source=source,
                           session_id=session_id)
    if len(rows):
        buckets = np.floor(rows["ts"].max() / bucket_s) - np.floor(rows["ts"].min() / bucket_s) + 1
        if buckets > MAX_OCCUPANCY_BUCKETS:
            raise SessionError(422, f"the rows span {int(buckets)} buckets of {bucket_s} s (at most "
                                    f"{MAX_OCCUPANCY_BUCKETS}): narrow from/to, raise bucket_s, or pick one source "
                                    "(batch rows count from 0, live rows in unix time)")
    table = analytics.occupancy(_per_person(rows), zones, bucket_s=bucket_s) if len(rows) else pd.DataFrame()
    return {"environment": environment, "window": span, "zones": [z.name for z in zones], "bucket_s": bucket_s,
            "buckets": table.to_dict("records")}
