"""Sub-videos in, a validated manifest and a synchronized frame index out."""

import numpy as np
import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, MetadataValue, Output, asset

from assets.partitions import ENV_SEGMENT, split_key
from resources.perception import PerceptionResource
from resources.store import ObjectStoreResource as StoreResource
from spoton.environment import scan_sub_videos, sub_video_key
from spoton.errors import VideoError
from spoton.storage.schemas import FRAMES, SUB_VIDEO_MANIFEST
from spoton.site.storage import load_environment
from spoton.video import probe


@asset(partitions_def=ENV_SEGMENT, group_name="ingest", io_manager_key="lake_io_manager",
       check_specs=[AssetCheckSpec("calibration_reprojection_error", asset="sub_video_manifest")])
def sub_video_manifest(context: AssetExecutionContext, store: StoreResource):
    """Probe each camera's sub-video of this segment; reject anything that is not a readable video.

    ``start_frame`` places the sub-video on the environment clock: the camera's
    start offset plus the frames of its earlier segments.
    """
    environment, segment = split_key(context)
    object_store = store.get_store()
    env = load_environment(object_store, environment)
    segments_by_camera = scan_sub_videos(object_store).get(environment, {})  # one listing per run
    rows = []
    for camera in (c for c in env.cameras if c.enabled):
        key = sub_video_key(environment, camera.name, segment)
        if not object_store.exists(key):
            context.log.warning(f"{key} is absent: camera {camera.name} has no sub-video for segment {segment}")
            continue
        try:
            info = probe(object_store.local_path(key))
        except VideoError as error:
            raise VideoError(f"{key}: {error} - replace the file in the store and re-materialize "
                             f"partition {environment}|{segment}") from None
        earlier = sorted(s for s, cams in segments_by_camera.items() if camera.name in cams and s < segment)
        start = camera.start_offset_frames + sum(
            _frame_count(context, object_store, sub_video_key(environment, camera.name, s), info.frame_count)
            for s in earlier)
        rows.append({"camera": camera.name, "key": key, "codec": info.codec, "fps": info.fps,
                     "frame_count": info.frame_count, "width": info.width, "height": info.height,
                     "duration_s": info.duration_s, "size_bytes": info.size_bytes, "start_frame": start})
    if not rows:
        raise VideoError(f"no sub-videos for segment {segment} of {environment} in {object_store.uri}")
    table = SUB_VIDEO_MANIFEST.table(pa.Table.from_pylist(rows))
    errors = {c.name: c.calibration.reprojection_error_m for c in env.cameras if c.calibration is not None}
    worst = max(errors.values(), default=float("nan"))
    yield Output(table, metadata={"cameras": len(rows), "preview": MetadataValue.md(table.to_pandas().to_markdown())})
    yield AssetCheckResult(
        passed=bool(worst <= 0.5), severity=AssetCheckSeverity.WARN,
        metadata={f"{name}_m": round(value, 3) for name, value in errors.items()} | {"worst_m": round(worst, 3)},
        description="RMS reprojection error of each camera's image->map homography (metres); warn above 0.5 m")


def _frame_count(context, store, key: str, fallback: int) -> int:
    """Frames of an earlier sub-video; an unreadable one (its own partition fails) counts as ``fallback``."""
    try:
        return probe(store.local_path(key)).frame_count
    except VideoError as error:
        context.log.warning(f"{key} is unreadable ({error}); assuming {fallback} frames to place later segments")
        return fallback


@asset(partitions_def=ENV_SEGMENT, group_name="ingest", io_manager_key="lake_io_manager")
def frames(context: AssetExecutionContext, sub_video_manifest: pa.Table, store: StoreResource,
           perception: PerceptionResource):
    """The frames to process: sampled on the environment clock so all cameras share instants.

    A frame is kept when its global index falls on the sampling grid (every
    ``round(fps / processing_fps)``-th frame of the environment clock), so the
    kept frames of different cameras are simultaneous even with time offsets.
    """
    environment, _ = split_key(context)
    env = load_environment(store.get_store(), environment)
    step = max(1, round(env.fps / perception.processing_fps)) if perception.processing_fps else 1
    parts = []
    for row in sub_video_manifest.to_pylist():
        local = np.arange(row["frame_count"], dtype=np.int64)
        global_frame = row["start_frame"] + local
        kept = global_frame % step == 0
        parts.append(pa.table({"camera": [row["camera"]] * int(kept.sum()), "frame_index": local[kept],
                               "global_frame": global_frame[kept], "ts": global_frame[kept] / env.fps}))
    table = FRAMES.table(pa.concat_tables(parts))
    context.add_output_metadata({"frames": table.num_rows, "sampling_step": step,
                                 "processing_fps": env.fps / step})
    return table
