"""`make demo`: build the sample environment into the local store, materialize the whole graph, summarize.

    .venv/bin/python -m orchestration.demo [--max-source-frames N] [--workers 2] [--adaptation]
"""
import argparse
import os
import sys
import time

from dagster import DagsterInstance

from orchestration.resources import shared_dir, use_local_instance, var_dir
from orchestration.runner import materialize_adaptation, materialize_all, register_partitions
from spoton.artifacts import cache_dir_from, fetch_sample_video
from spoton.storage.catalog import build_catalog, query
from spoton.environment import scan_sub_videos
from spoton.ground_truth import write_ground_truth
from spoton.storage.lake import ParquetLake
from spoton.sample import ENV_NAME
from spoton.sample.builder import build_sample_environment, load_sample_cameras
from spoton.sample.ground_truth import sample_environment_ground_truth, shared_source_ground_truth
from spoton.storage.store import LocalStore


def store_sample_ground_truth(store: LocalStore, max_source_frames: int | None) -> str:
    """Write the sample environment's per-camera ground truth when the PETS annotation is at hand;
    returns the line to print either way."""
    source = shared_source_ground_truth(shared_dir())
    if source is None:
        return ("ground truth: none (the PETS annotation ../shared/pets/gt_view1_frames0000-0399.txt is absent; "
                "set SPOTON_SHARED to the folder holding pets/), accuracy evaluation is skipped")
    truth = sample_environment_ground_truth(load_sample_cameras(), source, max_source_frames)
    keys = write_ground_truth(store, ENV_NAME, truth)
    boxes = sum(len(b) for b in truth.cameras.values())
    return (f"ground truth: {boxes} boxes over frames {truth.frames[0]}..{truth.frames[1] - 1} "
            f"-> {len(keys)} files in {store.uri}/{ENV_NAME}/ground_truth/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-source-frames", type=int, help="build the environment from the first N frames only")
    parser.add_argument("--workers", type=int, default=2, help="segment partitions processed in parallel")
    parser.add_argument("--adaptation", action="store_true",
                        help="also learn the environment's appearance adaptation head (opt-in asset appearance_adaptation)")
    args = parser.parse_args()
    var = var_dir()
    use_local_instance()
    store_root = os.environ.get("SPOTON_STORE", str(var / "store"))

    print(f"1/4 sample environment {ENV_NAME!r} -> {store_root}")
    build_sample_environment(fetch_sample_video(cache_dir_from(os.environ)), store_root, ENV_NAME,
                             max_source_frames=args.max_source_frames)
    print(f"    {store_sample_ground_truth(LocalStore(store_root), args.max_source_frames)}")
    found = scan_sub_videos(LocalStore(store_root))
    segments = sorted(found[ENV_NAME])
    register_partitions(DagsterInstance.get(), found)

    print(f"2/4 materializing {len(segments)} segment partitions ({args.workers} at a time), then {ENV_NAME}")
    started = time.perf_counter()
    runs = materialize_all(ENV_NAME, segments, workers=args.workers)
    if args.adaptation and any(run.success for run in runs):
        runs.append(materialize_adaptation(ENV_NAME))
    for run in runs:
        print(f"    {run.partition:<22} {'ok' if run.success else 'FAILED: ' + run.error}  run {run.run_id[:8]}")
    print(f"    {time.perf_counter() - started:.0f} s")

    catalog = var / "spoton.duckdb"
    views = build_catalog(ParquetLake(LocalStore(var / "lake")), catalog)
    print(f"3/4 DuckDB catalog {catalog}: {', '.join(views)}")

    print("4/4 summary")
    _, rows = query(catalog, "select camera, round(count(*) / count(distinct global_frame), 2), "
                             "count(distinct tracklet_id) from tracklets group by camera order by camera")
    for camera, people, tracklets in rows:
        print(f"    {camera}: {people} people per frame, {tracklets} tracklets")
    if "global_identities" in views:
        (identities,), = query(catalog, "select count(distinct global_id) from global_identities")[1]
        print(f"    global identities: {identities}")

    print(f"    heatmap picture: {store_root}/{ENV_NAME}/heatmap.png")
    print('    try: .venv/bin/spoton sql "select count(distinct global_id) from global_identities"')
    return 0 if all(run.success for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
