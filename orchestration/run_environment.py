"""`spoton run ENV`: materialize every partition of one environment through Dagster, as `make demo`
does for the sample, with a line per partition, then refresh the DuckDB catalog `spoton sql` reads.

    .venv/bin/python -m orchestration.run_environment ENV [--workers 2]

Exit status: 0 all partitions materialized, 1 some failed, 2 the environment has nothing to run.
(``spoton run`` starts this module in a process of its own: the core package imports no Dagster.)
"""
import argparse
import os
import sys

from dagster import DagsterInstance

from orchestration.resources import use_local_instance, var_dir
from orchestration.runner import PartitionRun, materialize_all, register_partitions
from spoton.storage.catalog import build_catalog
from spoton.environment import scan_sub_videos
from spoton.storage.lake import ParquetLake
from spoton.site.storage import environment_exists
from spoton.storage.store import LocalStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spoton run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("environment")
    parser.add_argument("--workers", type=int, default=2, help="segment partitions processed in parallel")
    args = parser.parse_args(argv)
    store = LocalStore(os.environ.get("SPOTON_STORE", str(var_dir() / "store")))
    segments = sorted(scan_sub_videos(store).get(args.environment, {}))
    if not environment_exists(store, args.environment) or not segments:
        print(f"spoton: error: environment {args.environment!r} has no sub-videos in {store.uri}: create it and "
              f"add a camera from a video first (spoton env add-camera {args.environment} CAMERA --video FILE)",
              file=sys.stderr)
        return 2
    use_local_instance()
    register_partitions(DagsterInstance.get(), {args.environment: {s: set() for s in segments}})
    print(f"materializing {len(segments)} segment partitions of {args.environment!r}, then the environment",
          flush=True)
    total = len(segments) + 1
    numbers = iter(range(1, total + 1))

    def report(run: PartitionRun) -> None:
        state = "ok" if run.success else "FAILED: " + run.error
        print(f"[{next(numbers)}/{total}] {run.partition:<28} {state}  run {run.run_id[:8]}", flush=True)

    runs = materialize_all(args.environment, segments, workers=args.workers, on_run=report)
    catalog = var_dir() / "spoton.duckdb"
    views = build_catalog(ParquetLake(LocalStore(var_dir() / "lake")), catalog)
    print(f"DuckDB catalog {catalog}: {', '.join(views)}")
    return 0 if all(run.success for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
