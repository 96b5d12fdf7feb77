"""Per-segment perception: detections and per-camera tracklets in one pass, then tracklet embeddings."""

import dataclasses
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetOut,
                     Output, asset, multi_asset)

from assets.ingest import StoreResource
from assets.partitions import ENV_SEGMENT, split_key
from resources.perception import PerceptionResource
from spoton.identity.crossings import resolve_crossings
from spoton.perception.appearance import embed_tracklets
from spoton.environment import FrameClock, sub_video_key
from spoton.perception.processor import ClockFrame, synchronized
from spoton.storage.schemas import DETECTIONS, TRACKLET_EMBEDDINGS, TRACKLETS, detections_table, tracks_table
from spoton.site.storage import load_environment
from spoton.video import iter_frames

MAX_MEAN_PEOPLE_PER_FRAME = 40.0
MAX_SHORT_TRACK_SHARE = 0.6  # tracker tracks under 1 s; above this the tracker is fragmenting people


def _camera_streams(store, environment: str, segment: str, frames: pa.Table) -> dict[str, object]:
    streams = {}
    for camera in pc.unique(frames["camera"]).to_pylist():
        rows = frames.filter(pc.equal(frames["camera"], camera))
        clock = dict(zip(rows["frame_index"].to_pylist(), zip(rows["global_frame"].to_pylist(), rows["ts"].to_pylist())))
        path = store.local_path(sub_video_key(environment, camera, segment))

        def stream(path=path, clock=clock):
            for frame in iter_frames(path, stop=max(clock) + 1):
                if frame.index in clock:
                    global_frame, ts = clock[frame.index]
                    yield ClockFrame(frame.index, global_frame, ts, frame.image)
        streams[camera] = stream()
    return streams


def _add_clock_columns(table: pa.Table, frames: pa.Table) -> pa.Table:
    lookup = {(c, i): g for c, i, g in zip(frames["camera"].to_pylist(), frames["frame_index"].to_pylist(),
                                           frames["global_frame"].to_pylist())}
    global_frame = [lookup[(c, i)] for c, i in zip(table["camera"].to_pylist(), table["frame_index"].to_pylist())]
    return table.append_column("global_frame", pa.array(global_frame, pa.int64()))


def _resolve_crossings(tracks: pa.Table, config, store, environment: str, segment: str) -> tuple[pa.Table, int]:
    """Each camera's tracks with the swaps at crossings re-decided (spoton.identity.crossings); the
    crops are embedded from the segment's sub-video. Returns the table and the number of swaps."""
    table = tracks.to_pandas()
    embedders = []  # built on the first crossing that needs crops

    def embed(crops):
        if not embedders:
            embedders.append(dataclasses.replace(config, crop_size=config.crossings.crop_size).build_embedder())
        path = store.local_path(sub_video_key(environment, str(crops["camera"].iloc[0]), segment))
        return embed_tracklets(crops, lambda _camera, stop: iter_frames(path, stop=stop), embedders[0],
                               config.crossings.crops)[0]

    ids = table["track_id"].to_numpy().copy()
    swaps = 0
    for _, rows in table.groupby("camera"):
        new, decisions = resolve_crossings(rows.reset_index(drop=True), config.crossings, embed)
        ids[rows.index.to_numpy()] = new
        swaps += int(decisions["swapped"].sum())
    column = tracks.schema.get_field_index("track_id")
    field = tracks.schema.field(column)
    return tracks.set_column(column, field, pa.array(ids, field.type)), swaps


@multi_asset(
    partitions_def=ENV_SEGMENT, group_name="perception",
    outs={"detections": AssetOut(io_manager_key="lake_io_manager"),
          "tracklets": AssetOut(io_manager_key="lake_io_manager")},
    check_specs=[AssetCheckSpec("detections_per_frame", asset="detections"),
                 AssetCheckSpec("frames_missing", asset="detections"),
                 AssetCheckSpec("track_fragmentation", asset="tracklets")])
def detect_and_track(context: AssetExecutionContext, frames: pa.Table, store: StoreResource,
                     perception: PerceptionResource):
    """Drive the FrameProcessor over the segment's synchronized camera frames.

    One decode and one detector pass yield both tables; trackers are per
    camera and start fresh per segment (identities continue across segments
    through ``global_identities``).
    """
    environment, segment = split_key(context)
    object_store = store.get_store()
    env = load_environment(object_store, environment)
    cameras = [env.camera_spec(c.name) for c in env.cameras if c.name in set(frames["camera"].to_pylist())]
    step = FrameClock.of(frames["global_frame"], frames["ts"]).step
    config = perception.config()
    processor = config.build_processor(cameras, frame_rate=env.fps / step)
    results = []
    for instant in synchronized(_camera_streams(object_store, environment, segment, frames)):
        results.extend(processor.process(instant).values())
    detections = DETECTIONS.table(_add_clock_columns(detections_table(results), frames))
    tracks = _add_clock_columns(tracks_table(results), frames)
    swaps = 0
    if config.crossings is not None and tracks.num_rows:
        tracks, swaps = _resolve_crossings(tracks, config, object_store, environment, segment)
    cameras, track_ids = tracks["camera"].to_pylist(), tracks["track_id"].to_pylist()
    tracklet_ids = config.tracklet_cut.tracklet_ids(cameras, [segment] * len(cameras), track_ids,
                                                    tracks["global_frame"].to_numpy() // step, env.fps / step)
    tracks = TRACKLETS.table(tracks.append_column("tracklet_id", pa.array(tracklet_ids, pa.string())))

    decoded = len(results)  # camera-frames processed
    counts = np.array([len(r.detections) for r in results], dtype=np.int64)
    mean_people = float(counts.mean()) if decoded else 0.0
    # fragmentation is the tracker's: measured on its own tracks, before they are cut into tracklets
    tracker_tracks = [f"{c}/{t}" for c, t in zip(cameras, track_ids)]
    lengths = np.array(list(Counter(tracker_tracks).values()))
    short_share = float((lengths < env.fps / step).mean()) if len(lengths) else 0.0
    yield Output(detections, output_name="detections",
                 metadata={"rows": detections.num_rows, "mean_per_frame": round(mean_people, 2)})
    yield Output(tracks, output_name="tracklets",
                 metadata={"rows": tracks.num_rows, "tracks": len(lengths), "tracklets": len(set(tracklet_ids)),
                           "crossings_swapped": swaps})
    yield AssetCheckResult(
        asset_key="detections", check_name="detections_per_frame",
        passed=bool(decoded and 0.0 < mean_people <= MAX_MEAN_PEOPLE_PER_FRAME),
        metadata={"mean": round(mean_people, 2), "max": int(counts.max()) if decoded else 0,
                  "empty_frames": int((counts == 0).sum()) if decoded else 0},
        description=f"mean detections per camera-frame must be in (0, {MAX_MEAN_PEOPLE_PER_FRAME}]")
    yield AssetCheckResult(
        asset_key="detections", check_name="frames_missing", passed=decoded == frames.num_rows,
        metadata={"indexed": frames.num_rows, "decoded": decoded, "missing": frames.num_rows - decoded},
        description="frames listed in the frame index that the decoder could not deliver")
    yield AssetCheckResult(
        asset_key="tracklets", check_name="track_fragmentation", severity=AssetCheckSeverity.WARN,
        passed=short_share <= MAX_SHORT_TRACK_SHARE,
        metadata={"tracks": len(lengths), "median_length_frames": float(np.median(lengths)) if len(lengths) else 0.0,
                  "short_share": round(short_share, 3)},
        description=f"share of the tracker's tracks shorter than 1 s must be <= {MAX_SHORT_TRACK_SHARE}")


@asset(partitions_def=ENV_SEGMENT, group_name="perception", io_manager_key="lake_io_manager")
def tracklet_embeddings(context: AssetExecutionContext, tracklets: pa.Table, store: StoreResource,
                        perception: PerceptionResource) -> pa.Table:
    """One appearance vector per tracklet: the normalised mean of its best crops' embeddings."""
    environment, segment = split_key(context)
    object_store = store.get_store()

    def frames_of(camera: str, stop: int):
        return iter_frames(object_store.local_path(sub_video_key(environment, camera, segment)), stop=stop)

    config = perception.config()
    means, counts = embed_tracklets(tracklets.to_pandas(), frames_of, config.build_embedder(),
                                   config.crops_per_tracklet)
    summary = tracklets.group_by(["tracklet_id", "camera"]).aggregate(
        [("ts", "min"), ("ts", "max"), ("ts", "count")]).sort_by("tracklet_id")
    ids = summary["tracklet_id"].to_pylist()
    table = TRACKLET_EMBEDDINGS.table(pa.table({
        "tracklet_id": ids, "camera": summary["camera"], "start_ts": summary["ts_min"], "end_ts": summary["ts_max"],
        "n_boxes": summary["ts_count"], "n_crops": [counts[t] for t in ids],
        "embedding": pa.array([means[t].tolist() for t in ids], pa.list_(pa.float32())),
    }))
    context.add_output_metadata({"tracklets": table.num_rows, "crops_embedded": int(sum(counts.values()))})
    return table
