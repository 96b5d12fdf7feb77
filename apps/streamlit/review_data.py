"""What the review app reads and draws, kept free of Streamlit so tests and notebooks can call it.

Everything comes from the local deployment's folder (``$SPOTON_VAR``, default ``var/``): the
DuckDB catalog ``spoton.duckdb`` over the lake, the store (sub-videos, environment config), the
lake itself (corrections are appended there) and the Dagster instance (asset-check results).

With ``SPOTON_STORE=s3://B/store`` the store and the lake are on S3 (the lake ``s3://B/lake``, or
``SPOTON_LAKE=s3://...``; ``SPOTON_S3_ENDPOINT``, boto3's credentials): :func:`sync` mirrors the
lake into ``$SPOTON_VAR/s3-lake`` (new live files and changed partitions only; what retention
deleted goes) and rebuilds the catalog over it; frames are read from S3 through the store's cache.
"""
from __future__ import annotations

import functools
import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import cv2
import duckdb
import numpy as np
import pandas as pd

from spoton.analytics import colour_scale_max, heatmap
from spoton.annotate import draw_tracks, track_color
from spoton.storage.catalog import build_catalog
from spoton.environment import sub_video_key
from spoton.storage.lake import ParquetLake
from spoton.records import Tracks
from spoton.identity.adaptation import ProjectionHead
from spoton.identity.search import TrackletIndex
from spoton.site import storage
from spoton.site.model import Environment, FloorPlan
from spoton.storage.store import LocalStore, ObjectStore, S3Store, lake_beside, parse_s3_uri, s3_client
from spoton.video import iter_frames

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAJECTORY_THICKNESS_PX = 3


class ReviewDataError(RuntimeError):
    """The pipeline outputs the app needs are missing."""


@dataclass(frozen=True)
class S3Location:
    """The S3 store and lake of a prod deployment, and how to reach them."""

    store: str  # s3://bucket/prefix
    lake: str
    endpoint: str | None = None  # None: AWS
    region: str = "us-east-1"

    def open(self, uri: str, cache_dir: Path) -> S3Store:
        """The store at ``uri`` (one client per location, reused: the app reads many objects)."""
        bucket, prefix = parse_s3_uri(uri)
        return S3Store(_client(self.endpoint, self.region), bucket, prefix, cache_dir=cache_dir)


@functools.lru_cache(maxsize=4)
def _client(endpoint: str | None, region: str):
    return s3_client(endpoint_url=endpoint, region_name=region)


@dataclass(frozen=True)
class ReviewPaths:
    """Where one deployment keeps its outputs (the layout ``make demo`` writes). With ``s3`` set, ``store``
    is the folder of the S3 store's download cache and ``lake`` the local mirror of the S3 lake."""

    var: Path
    store: Path
    lake: Path
    catalog: Path
    dagster_home: Path
    s3: S3Location | None = None

    @classmethod
    def from_var(cls, var: Path | str, store: Path | str | None = None) -> "ReviewPaths":
        var = Path(var).resolve()
        return cls(var, Path(store).resolve() if store else var / "store", var / "lake", var / "spoton.duckdb",
                   var / "dagster_home")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ReviewPaths":
        """``$SPOTON_VAR`` (and ``$SPOTON_STORE``), as the Makefile exports them; an ``s3://`` store
        (with ``SPOTON_LAKE``, ``SPOTON_S3_ENDPOINT``, ``AWS_REGION``) puts the store and lake on S3."""
        env = os.environ if env is None else env
        var, store = env.get("SPOTON_VAR", REPO_ROOT / "var"), env.get("SPOTON_STORE")
        if not (store or "").startswith("s3://"):
            return cls.from_var(var, store)
        lake = env.get("SPOTON_LAKE") or ""
        try:
            s3 = S3Location(store, lake if lake.startswith("s3://") else lake_beside(store),
                            env.get("SPOTON_S3_ENDPOINT") or None, env.get("AWS_REGION", "us-east-1"))
            parse_s3_uri(s3.lake)
        except ValueError as exc:
            raise ReviewDataError(f"SPOTON_STORE / SPOTON_LAKE: {exc}") from None
        var = Path(var).resolve()
        return cls(var, var / "s3-cache", var / "s3-lake", var / "spoton-s3.duckdb", var / "dagster_home", s3)

    def check(self) -> None:
        if self.s3 is not None and not self.catalog.is_file():
            raise ReviewDataError(f"no catalog of {self.s3.lake}: run sync() (the app does at start); an empty "
                                  "lake has none: materialize the pipeline first")
        missing = [p for p in (self.catalog, self.lake, self.store) if not p.exists() and self.s3 is None]
        if missing:
            raise ReviewDataError(
                f"{', '.join(map(str, missing))} missing: run `make demo` first (it writes the store, the lake "
                f"and the catalog under {self.var}), or point SPOTON_VAR at a folder that has them")


def store(paths: ReviewPaths) -> ObjectStore:
    """The store: the folder, or S3 (objects read through a download cache under ``paths.store``)."""
    return LocalStore(paths.store) if paths.s3 is None else paths.s3.open(paths.s3.store, paths.store)


def sync(paths: ReviewPaths) -> list[str]:
    """On S3: mirror the lake into ``paths.lake`` and rebuild the catalog over it (run at start and on
    the app's reload); the catalog's views. A local deployment's catalog is the pipeline's: untouched."""
    if paths.s3 is None:
        return []
    return build_catalog(lake(paths), paths.catalog, mirror_dir=paths.lake)


def current_author() -> str:
    """Who is correcting when the app is not told: $SPOTON_USER, else the login name."""
    return os.environ.get("SPOTON_USER") or getpass.getuser()


def sql(paths: ReviewPaths, query: str, params: list | None = None) -> pd.DataFrame:
    """One read-only query against the catalog (a short-lived connection: rebuilds never collide)."""
    with duckdb.connect(str(paths.catalog), read_only=True) as connection:
        return connection.execute(query, params or []).df()


def views(paths: ReviewPaths) -> set[str]:
    return set(sql(paths, "select table_name from information_schema.tables")["table_name"])


def environments(paths: ReviewPaths) -> list[str]:
    return sql(paths, "select distinct environment from tracklets order by 1")["environment"].tolist()


def segments(paths: ReviewPaths, environment: str) -> list[str]:
    return sql(paths, "select distinct segment from tracklets where environment = ? order by 1",
               [environment])["segment"].tolist()


@dataclass(frozen=True, eq=False)
class SiteMap:
    """An environment and its floor-plan picture (BGR; blank when it has none), what the map page draws on."""

    environment: Environment
    image: np.ndarray

    @classmethod
    def from_store(cls, store: ObjectStore, environment: Environment) -> "SiteMap":
        plan = environment.floor_plan
        key = f"{environment.name}/{plan.image_key}" if plan.image_key else None
        image = cv2.imread(str(store.local_path(key))) if key and store.exists(key) else None
        if image is None:
            image = np.full((plan.size_px[1], plan.size_px[0], 3), 255, np.uint8)
        return cls(environment, image)

    @property
    def floor_plan(self) -> FloorPlan:
        return self.environment.floor_plan

    @property
    def camera_names(self) -> tuple[str, ...]:
        return self.environment.camera_names


def load_environment(paths: ReviewPaths, environment: str) -> SiteMap:
    objects = store(paths)
    return SiteMap.from_store(objects, storage.load_environment(objects, environment))


# ---------------------------------------------------------------------------------------- frames
def frame_range(paths: ReviewPaths, environment: str, segment: str, camera: str) -> tuple[int, int]:
    """First and last processed frame index of one camera's sub-video."""
    row = sql(paths, "select min(frame_index) lo, max(frame_index) hi from frames "
                     "where environment = ? and segment = ? and camera = ?", [environment, segment, camera])
    if row.empty or pd.isna(row.at[0, "lo"]):
        raise ReviewDataError(f"no frames of {camera} in {environment}/{segment}: materialize that segment")
    return int(row.at[0, "lo"]), int(row.at[0, "hi"])


def frame_boxes(paths: ReviewPaths, environment: str, segment: str, camera: str, frame_index: int) -> pd.DataFrame:
    """The tracked boxes of one frame with their global identity (NA where none was assigned)."""
    return sql(paths, """
        select t.track_id, t.tracklet_id, t.x1, t.y1, t.x2, t.y2, t.conf, t.ts, g.global_id
        from tracklets t left join global_identities g using (environment, tracklet_id)
        where t.environment = ? and t.segment = ? and t.camera = ? and t.frame_index = ?
        order by t.track_id""", [environment, segment, camera, int(frame_index)])


def decode_frame(paths: ReviewPaths, environment: str, camera: str, segment: str, frame_index: int) -> np.ndarray:
    """One BGR frame of a sub-video in the store."""
    video = store(paths).local_path(sub_video_key(environment, camera, segment))
    for frame in iter_frames(video, start=int(frame_index), stop=int(frame_index) + 1):
        return frame.image
    raise ReviewDataError(f"{video} has no frame {frame_index}")


def annotated_frame(image: np.ndarray, boxes: pd.DataFrame) -> np.ndarray:
    """Boxes coloured by global identity (the map's colours), tagged "G<global> t<track>"."""
    gid = boxes["global_id"].fillna(-1).astype(np.int64).to_numpy()
    tracks = Tracks(boxes[["x1", "y1", "x2", "y2"]].to_numpy(np.float32), np.where(gid >= 0, gid, 0),
                    boxes["conf"].fillna(0).to_numpy(np.float32), np.zeros(len(boxes)), np.arange(len(boxes)))
    labels = [f"G{g} t{t}" if g >= 0 else f"t{t}" for g, t in zip(gid, boxes["track_id"])]
    return draw_tracks(image, tracks, labels=labels)


# ---------------------------------------------------------------------------------------- map
def trajectories(paths: ReviewPaths, environment: str, source: str = "batch",
                 session_id: str | None = None) -> pd.DataFrame:
    """Map trajectories of the batch pipeline, or (``source="live"``) of live sessions (one, or all):
    global ids and clocks are per source (live ids per session, live ts in unix seconds)."""
    return sql(paths, "select global_id, ts, map_x, map_y from map_trajectories where environment = ? "
                      "and source = ? and (? is null or session_id = ?) order by global_id, ts",
               [environment, source, session_id, session_id])


def live_sessions(paths: ReviewPaths, environment: str) -> pd.DataFrame:
    """The live sessions that left history in the lake: when (UTC), boxes and identities, newest first."""
    columns = ["session_id", "started", "ended", "boxes", "identities", "cameras"]
    if "camera_tracks" not in views(paths):
        return pd.DataFrame(columns=columns)
    return sql(paths, "select session_id, to_timestamp(min(ts)) as started, to_timestamp(max(ts)) as ended, "
                      "count(*) as boxes, count(distinct global_id) as identities, count(distinct camera) as cameras "
                      "from camera_tracks where environment = ? and source = 'live' group by session_id "
                      "order by started desc", [environment])


def live_heatmap_cells(paths: ReviewPaths, env: "SiteMap", session_id: str, cell_m: float = 0.5) -> pd.DataFrame:
    """The heatmap of one live session (the batch one is the ``heatmaps`` table)."""
    return heatmap(trajectories(paths, env.environment.name, "live", session_id),
                   extent_m=env.floor_plan.bounds_m, cell_m=cell_m)


def heatmap_cells(paths: ReviewPaths, environment: str) -> pd.DataFrame:
    return sql(paths, "select cell_ix, cell_iy, x_m, y_m, seconds, people from heatmaps where environment = ?",
               [environment])


def floor_plan_image(env: SiteMap) -> np.ndarray:
    return env.image


def draw_trajectories(env: SiteMap, paths_m: pd.DataFrame, max_gap_s: float = 1.0) -> np.ndarray:
    """Each identity's path on the floor plan in its colour (a new stroke after a gap), "G<id>" at its end.

    Pixels follow the floor plan's transform (+Y up on the image), so the paths line up with the
    zones and camera footprints drawn on it.
    """
    canvas = floor_plan_image(env).copy()
    for gid, path in paths_m.groupby("global_id"):
        colour = track_color(int(gid))
        pixels = env.floor_plan.to_pixels(path[["map_x", "map_y"]].to_numpy(np.float64))
        breaks = np.flatnonzero(np.diff(path["ts"].to_numpy()) > max_gap_s) + 1
        for stroke in np.split(np.round(pixels).astype(np.int32), breaks):
            if len(stroke) >= 2:
                cv2.polylines(canvas, [stroke], False, colour, TRAJECTORY_THICKNESS_PX, cv2.LINE_AA)
            else:
                cv2.circle(canvas, tuple(int(v) for v in stroke[0]), TRAJECTORY_THICKNESS_PX, colour, -1)
        end = tuple(int(v) for v in np.round(pixels[-1]))
        cv2.putText(canvas, f"G{gid}", (end[0] + 4, end[1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                    cv2.LINE_AA)
    return canvas


def heatmap_cell_m(env: SiteMap, cells: pd.DataFrame) -> float:
    """The grid's cell size, recovered from any cell (x_m is the centre of cell_ix)."""
    xmin = env.floor_plan.bounds_m[0]
    row = cells.iloc[0]
    return float((row["x_m"] - xmin) / (row["cell_ix"] + 0.5))


def draw_heatmap(env: SiteMap, cells: pd.DataFrame, value: str = "seconds") -> np.ndarray:
    """Visited cells in the turbo colour map (blue = little, red = most) over the floor plan."""
    canvas = floor_plan_image(env).copy()
    if cells.empty:
        return canvas
    half = heatmap_cell_m(env, cells) / 2
    peak = colour_scale_max(cells[value].to_numpy())
    colours = cv2.applyColorMap(np.round(255 * np.clip(cells[value].to_numpy() / peak, 0, 1)).astype(np.uint8)[:, None],
                                cv2.COLORMAP_TURBO)[:, 0]
    overlay = canvas.copy()
    for (x, y), colour in zip(cells[["x_m", "y_m"]].to_numpy(), colours):
        corners = env.floor_plan.to_pixels(np.array([[x - half, y + half], [x + half, y - half]]))
        (x0, y0), (x1, y1) = np.round(corners).astype(int)
        cv2.rectangle(overlay, (x0, y0), (x1 - 1, y1 - 1), tuple(int(c) for c in colour), -1)
    return cv2.addWeighted(overlay, 0.8, canvas, 0.2, 0)


# ---------------------------------------------------------------------------------------- identities
def identities(paths: ReviewPaths, environment: str) -> pd.DataFrame:
    """One row per tracklet: its identity, camera, segment, time span (seconds) and boxes."""
    return sql(paths, "select * from global_identities where environment = ? order by global_id, start_ts",
               [environment])


def gallery(paths: ReviewPaths, environment: str, global_id: int, per_tracklet: int = 1) -> list[dict]:
    """Crops of one identity from every camera that saw it: the tallest box of each tracklet, with time.

    Crops are decoded from the sub-videos in the store, never stored as images.
    """
    boxes = sql(paths, """
        select t.camera, t.segment, t.tracklet_id, t.frame_index, t.ts, t.x1, t.y1, t.x2, t.y2,
               row_number() over (partition by t.tracklet_id order by (t.y2 - t.y1) * t.conf desc) as pick
        from tracklets t join global_identities g using (environment, tracklet_id)
        where t.environment = ? and g.global_id = ? qualify pick <= ? order by t.camera, t.ts""",
                [environment, int(global_id), int(per_tracklet)])
    crops = []
    for row in boxes.itertuples(index=False):
        image = decode_frame(paths, environment, row.camera, row.segment, row.frame_index)
        x1, y1 = max(int(row.x1), 0), max(int(row.y1), 0)
        x2, y2 = min(int(np.ceil(row.x2)), image.shape[1]), min(int(np.ceil(row.y2)), image.shape[0])
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        crops.append({"camera": row.camera, "segment": row.segment, "tracklet_id": row.tracklet_id,
                      "frame_index": int(row.frame_index), "ts": float(row.ts), "image": image[y1:y2, x1:x2]})
    return crops


def adaptation_head(paths: ReviewPaths, environment: str) -> ProjectionHead | None:
    """The environment's learned appearance head (the opt-in ``appearance_adaptation`` asset), or
    None where it was never trained or its model file is gone."""
    if "appearance_adaptation" not in views(paths):
        return None
    rows = sql(paths, "select model_key from appearance_adaptation where environment = ?", [environment])
    store = LocalStore(paths.store)
    if rows.empty or not store.exists(rows["model_key"].iloc[-1]):
        return None
    return ProjectionHead.from_bytes(store.read_bytes(rows["model_key"].iloc[-1]))


def search_index(paths: ReviewPaths, environment: str) -> TrackletIndex:
    """FAISS index over this environment's tracklet embeddings, built on the fly; through the
    environment's adapted appearance head where there is one (on the sample's ground truth it
    lifts search mAP from ~52 to ~80 and top-1 from ~87 to ~90: docs/benchmarks.md)."""
    embeddings = sql(paths, "select tracklet_id, embedding from tracklet_embeddings where environment = ?",
                     [environment])
    head = adaptation_head(paths, environment)
    if head is not None:
        embeddings = head.adapt(embeddings)
    return TrackletIndex(embeddings, identities(paths, environment)[["tracklet_id", "global_id"]])


# ---------------------------------------------------------------------------------------- analytics
def occupancy(paths: ReviewPaths, environment: str) -> pd.DataFrame:
    return sql(paths, "select zone, t_start, t_end, people, mean_people from occupancy where environment = ? "
                      "order by zone, t_start", [environment])


def dwell_per_zone(paths: ReviewPaths, environment: str) -> pd.DataFrame:
    return sql(paths, "select zone, count(*) as visits, count(distinct global_id) as people, "
                      "round(avg(seconds), 1) as mean_s, round(max(seconds), 1) as max_s "
                      "from dwell where environment = ? group by zone order by zone", [environment])


def check_results(paths: ReviewPaths, environment: str, shown_segments: list[str]) -> pd.DataFrame:
    """The latest result of every asset check on the shown partitions, from the Dagster instance."""
    columns = ["asset", "check", "partition", "passed", "severity", "description", "metadata", "run_id"]
    if not paths.dagster_home.is_dir():
        return pd.DataFrame(columns=columns)
    from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter

    wanted = {environment} | {f"{environment}|{s}" for s in shown_segments}
    latest: dict[tuple, dict] = {}
    with DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        partition_of_run: dict[str, str | None] = {}
        records = instance.get_event_records(EventRecordsFilter(DagsterEventType.ASSET_CHECK_EVALUATION),
                                             ascending=True)
        for record in records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            run_id = record.event_log_entry.run_id
            if run_id not in partition_of_run:  # the run's partition: checks of partitioned assets carry none
                run = instance.get_run_by_id(run_id)
                partition_of_run[run_id] = run.tags.get("dagster/partition") if run else None
            partition = evaluation.partition or partition_of_run[run_id]
            if partition not in wanted:
                continue
            key = (evaluation.asset_key.to_user_string(), evaluation.check_name, partition)
            latest[key] = {
                "asset": key[0], "check": key[1], "partition": partition, "passed": bool(evaluation.passed),
                "severity": evaluation.severity.value, "description": evaluation.description or "",
                "metadata": {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()},
                "run_id": run_id[:8]}
    return pd.DataFrame(list(latest.values()), columns=columns).sort_values(["partition", "asset", "check"],
                                                                            ignore_index=True)


# ---------------------------------------------------------------------------------------- corrections
def lake(paths: ReviewPaths) -> ParquetLake:
    """The lake corrections are appended to: the folder, or the S3 lake (not its mirror)."""
    if paths.s3 is None:
        return ParquetLake(LocalStore(paths.lake))
    return ParquetLake(paths.s3.open(paths.s3.lake, paths.var / "s3-lake-cache"))


def rematerialize_identities(paths: ReviewPaths, environment: str):
    """Re-run the environment's identity and analytics assets (they apply the corrections), then
    refresh the catalog so the new overrides table and identities are queryable."""
    from dagster import DagsterInstance

    from orchestration.resources import perception_from_env
    from orchestration.runner import materialize_environment
    from resources.lake_io import ParquetLakeIOManager
    from resources.store import LocalStoreResource

    if paths.s3 is not None:
        raise ReviewDataError("on an S3 deployment the corrections are in the S3 lake: re-materialize the "
                              f"environment's identity assets ({environment}) in Dagster, then reload")
    resources = {"store": LocalStoreResource(root=str(paths.store)),
                 "lake_io_manager": ParquetLakeIOManager(store=LocalStoreResource(root=str(paths.lake))),
                 "perception": perception_from_env()}
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    with DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        instance.add_dynamic_partitions("environments", [environment])
        run = materialize_environment(environment, resources, instance)
    build_catalog(lake(paths), paths.catalog)
    return run
