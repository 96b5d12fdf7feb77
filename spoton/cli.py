"""``spoton`` command line: fetch models and data, track a video, (more per issue)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spoton.errors import SpotOnError


def _cmd_fetch(args: argparse.Namespace) -> int:
    """Everything ``make demo`` and ``make test`` need, fetched (and exported) once into the cache."""
    from spoton.artifacts import fetch_sample_video, mobilenetv2_weights_path
    from spoton.models.detector import nanodet_onnx_path
    from spoton.models.embedder import mobilenetv2_onnx_path

    cache = cache_dir()
    paths = {"nanodet_onnx": nanodet_onnx_path(cache), "mobilenetv2": mobilenetv2_weights_path(),
             "mobilenetv2_onnx": mobilenetv2_onnx_path(cache_dir=cache), "sample_video": fetch_sample_video(cache)}
    if args.print:
        print(paths[args.print])
        return 0
    for name, path in paths.items():
        print(f"{name:<16} {path}")
    return 0


def cache_dir() -> Path:
    """The models' and sample data's cache: ``$SPOTON_CACHE``, else the repository's ``.cache/spoton``."""
    import os

    from spoton.artifacts import cache_dir_from

    return cache_dir_from(os.environ)


def perception_from_args(args: argparse.Namespace):
    """``spoton track``'s flags on the one perception configuration."""
    from spoton.models.detector import DetectorConfig
    from spoton.perception.config import PerceptionConfig

    return PerceptionConfig(
        detector=args.detector, detector_model=args.detector_model, detector_precision=args.detector_precision,
        detector_config=DetectorConfig(score_threshold=args.score_threshold, resize=args.resize,
                                       min_box_height_px=args.min_box_height),
        tracker=args.tracker, embedder=args.embedder, embedder_weights=args.embedder_weights,
        processing_fps=args.fps, threads=args.threads, device=args.device, cache_dir=cache_dir())


def _cmd_track(args: argparse.Namespace) -> int:
    from spoton.pipeline import TrackOptions, track_video
    from spoton.identity.crossings import CrossingConfig
    from spoton.identity.postprocess import OfflineConfig

    options = TrackOptions(perception_from_args(args), max_frames=args.max_frames, write_video=not args.no_video,
                           tracker_frame_rate=args.frame_rate, calibration=args.calibration,
                           offline=None if args.online_only else
                           OfflineConfig(crossings=None if args.no_crossings else CrossingConfig()))
    summary = track_video(args.video, args.out, options, progress=not args.quiet)
    print(summary.format())
    return 0


def default_catalog() -> Path:
    """The DuckDB catalog the local deployment writes (``$SPOTON_VAR/spoton.duckdb``)."""
    import os

    return Path(os.environ.get("SPOTON_CATALOG", Path(os.environ.get("SPOTON_VAR", "var")) / "spoton.duckdb"))


def _print_rows(columns: list[str], rows: list[tuple], limit: int = 200) -> None:
    cells = [[("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row]
             for row in rows[:limit]]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print(" | ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("-+-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{', first ' + str(limit) + ' shown' if len(rows) > limit else ''})")


def _cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from spoton.storage.catalog import build_catalog, query

    if args.refresh:  # new tables (a first live session's history, retention_log) need a view
        from spoton.storage.lake import ParquetLake
        from spoton.storage.store import LocalStore

        build_catalog(ParquetLake(LocalStore(args.lake or _var_dir() / "lake")), args.catalog)
    if args.query:
        try:
            columns, rows = query(args.catalog, args.query)
        except (FileNotFoundError, duckdb.Error) as error:
            print(f"spoton sql: {error}", file=sys.stderr)
            return 2
        _print_rows(columns, rows)
        return 0
    print(f"SpotOn SQL on {args.catalog} (DuckDB). End statements with ';', quit with .quit or Ctrl-D.")
    buffer = ""
    while True:
        try:
            line = input("spoton> " if not buffer else "   ...> ")
        except EOFError:
            print()
            return 0
        if line.strip() in (".quit", ".exit"):
            return 0
        buffer += line + "\n"
        if buffer.strip().endswith(";"):
            try:
                _print_rows(*query(args.catalog, buffer))
            except (FileNotFoundError, duckdb.Error) as error:
                print(f"error: {error}")
            buffer = ""


def _var_dir() -> Path:
    import os

    return Path(os.environ.get("SPOTON_VAR", "var"))


def _evaluate_video(tracks_path: Path, gt_path: Path, frames: tuple[int, int] | None, processed_only: bool):
    """Score a ``spoton track`` output (tracks.parquet) against one video's MOTChallenge ground truth.

    ``frames`` = [start, stop) video frames (default: the ground truth's span); every frame of the
    span counts unless ``processed_only`` (then frames the tracker skipped are not misses).
    """
    import numpy as np
    import pyarrow.parquet as pq

    from spoton.evaluation.metrics import MapError, evaluate_sequence, map_errors
    from spoton.evaluation.mot import MotBoxes, boxes_from_tracks

    gt = MotBoxes.read_mot(gt_path)
    tracks = pq.read_table(tracks_path).to_pandas().rename(columns={"frame_index": "global_frame"})
    pred = boxes_from_tracks(tracks, "track_id")
    start, stop = frames if frames else (int(gt.frame.min()), int(gt.frame.max()) + 1)
    scored = np.unique(pred.frame) if processed_only else np.arange(start, stop)
    scored = scored[(scored >= start) & (scored < stop)]
    gt, pred = gt.in_frames(scored), pred.in_frames(scored)
    return evaluate_sequence(gt, pred, scored), MapError.of(map_errors(gt, pred))


def _evaluate_lake(store, lake, environment: str):
    """Score what the pipeline wrote to ``lake`` for ``environment`` against the ground truth in
    ``store``; None when the environment has no ground truth."""
    from spoton.evaluation.multi_camera import evaluate_pipeline_tables
    from spoton.ground_truth import load_ground_truth

    truth = load_ground_truth(store, environment)
    if truth is None:
        return None
    segments = lake.segments("tracklets", environment)
    return evaluate_pipeline_tables(truth, lake.read_many("tracklets", environment, segments).to_pandas(),
                                    lake.read("camera_tracks", environment).to_pandas(),
                                    lake.read_many("frames", environment, segments).to_pandas(),
                                    lake.read("map_trajectories", environment).to_pandas())


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from spoton.evaluation.report import evaluation_records, evaluation_table, metrics_table

    if args.tracks is not None:  # one video tracked by `spoton track`
        if args.gt is None:
            print("spoton eval: --tracks needs --gt, the MOTChallenge ground truth of that video", file=sys.stderr)
            return 2
        frames = tuple(int(v) for v in args.frames.split(":")) if args.frames else None
        metrics, map_error = _evaluate_video(args.tracks, args.gt, frames, args.processed_only)
        if args.json:
            print(json.dumps(metrics.as_dict()))
        else:
            print(metrics_table({args.tracks.parent.name or "tracks": metrics},
                                {args.tracks.parent.name or "tracks": map_error}))
        return 0

    from spoton.storage.lake import ParquetLake
    from spoton.storage.store import LocalStore

    var = _var_dir()
    store = LocalStore(args.store or var / "store")
    lake = ParquetLake(LocalStore(args.lake or var / "lake"))
    evaluation = _evaluate_lake(store, lake, args.env)
    if evaluation is None:
        print(f"spoton eval: environment {args.env!r} has no ground truth in {store.uri}/{args.env}/ground_truth/, "
              "nothing to score (the sample environment gets one when ../shared/pets is present at build time)")
        return 0
    print(json.dumps(evaluation_records(evaluation), default=float) if args.json else evaluation_table(evaluation))
    return 0


def _cmd_export_mot(args: argparse.Namespace) -> int:
    """Write ``{out}/{env}/{camera}.txt`` (MOTChallenge; frame = environment frame + 1, world x, y =
    map metres) from the pipeline's final camera tracks (global ids) or tracklets (tracker ids)."""
    from spoton.evaluation.mot import boxes_from_tracks
    from spoton.storage.lake import ParquetLake
    from spoton.storage.store import LocalStore

    lake = ParquetLake(LocalStore(args.lake or _var_dir() / "lake"))
    segments = lake.segments("tracklets", args.env)
    if not segments:
        raise SpotOnError(f"no tracklets of environment {args.env!r} in {lake.store.uri}: "
                          "materialize its partitions first (make demo)")
    tracks = (lake.read_many("tracklets", args.env, segments) if args.tracker_ids
              else lake.read("camera_tracks", args.env)).to_pandas()
    for camera, rows in tracks.groupby("camera"):
        boxes = boxes_from_tracks(rows, "tracklet_id" if args.tracker_ids else "global_id")
        path = boxes.write_mot(args.out / args.env / f"{camera}.txt")
        print(f"{len(boxes):>6} boxes -> {path}")
    return 0


def _site_store(args: argparse.Namespace):
    from spoton.storage.store import LocalStore

    return LocalStore(args.store or _var_dir() / "store")


def _cmd_env_create(args: argparse.Namespace) -> int:
    from spoton.site.onboarding import create_site, parse_numbers, scale_from_points

    if (args.metres_per_pixel is None) == (args.scale_points is None):
        raise SpotOnError("give the floor plan's scale: --metres-per-pixel M, or --scale-points X1,Y1,X2,Y2 "
                          "with --distance-m D (the metres between those two plan pixels)")
    if args.scale_points is not None and args.distance_m is None:
        raise SpotOnError("--scale-points needs --distance-m D: the metres between the two plan pixels")
    scale = args.metres_per_pixel or scale_from_points(*parse_numbers(args.scale_points, 4, "--scale-points"),
                                                       args.distance_m)
    if not args.floor_plan.is_file():
        raise SpotOnError(f"no floor-plan image {args.floor_plan}: give the path of a PNG or JPEG")
    version = create_site(_site_store(args), args.env, args.floor_plan.read_bytes(), scale,
                          parse_numbers(args.origin_m, 2, "--origin-m"), args.y_axis,
                          segment_length_s=args.segment_length_s)
    print(f"site {args.env!r} created (version {version}): {scale:.5g} m per pixel")
    return 0


def _progress_lines():
    """A progress callback printing a line per stage and per 10% (what an upload job's record shows)."""
    shown = {"stage": None, "tenth": -1}

    def progress(stage: str, fraction: float) -> None:
        tenth = int(fraction * 10)
        if stage != shown["stage"] or tenth > shown["tenth"]:
            shown.update(stage=stage, tenth=tenth)
            print(f"  {stage} {fraction:4.0%}", flush=True)

    return progress


def _cmd_env_add_camera(args: argparse.Namespace) -> int:
    from spoton.site.ingest import add_video_camera
    from spoton.site.onboarding import add_uri_camera

    store = _site_store(args)
    if args.video is not None:
        added = add_video_camera(store, args.env, args.camera, args.video, args.fps, progress=_progress_lines())
        for key, frames in zip(added.keys, added.frame_counts):
            print(f"  {key}: {frames} frames")
        print(f"camera {args.camera!r} added to {args.env!r} (version {added.version}): {len(added.keys)} "
              f"sub-videos by {added.path} ({added.why})")
        return 0
    kind = "rtsp" if args.uri.lower().startswith("rtsp") else "http" if args.uri.lower().startswith("http") else "file"
    version = add_uri_camera(store, args.env, args.camera, kind, args.uri, args.fps)
    print(f"camera {args.camera!r} ({kind}) added to {args.env!r} (version {version})")
    return 0


def _cmd_env_calibrate(args: argparse.Namespace) -> int:
    from spoton.site.onboarding import calibrate_camera, read_point_pairs_csv

    if not args.points.is_file():
        raise SpotOnError(f"no calibration file {args.points}: give a CSV with columns image_x,image_y,map_x,map_y")
    image, world = read_point_pairs_csv(args.points.read_text())
    version, report = calibrate_camera(_site_store(args), args.env, args.camera, image, world, args.max_error_m)
    _print_rows(["pair", "image_x", "image_y", "map_x", "map_y", "error_m"],
                [(i + 1, *image[i], *world[i], e) for i, e in enumerate(report.point_errors_m)])
    print(f"RMS error {report.rms_error_m:.3f} m, worst {report.max_error_m:.3f} m; "
          f"camera {args.camera!r} calibrated (version {version})")
    return 0


def _cmd_env_region(args: argparse.Namespace) -> int:
    from spoton.site.onboarding import parse_polygon, set_region

    version, metres = set_region(_site_store(args), args.env, args.camera, parse_polygon(args.polygon, "--polygon"))
    print(f"camera {args.camera!r} tracks the floor inside "
          f"{'; '.join(f'{x:.2f},{y:.2f}' for x, y in metres)} m (version {version})")
    return 0


def _cmd_env_zone(args: argparse.Namespace) -> int:
    from spoton.site.onboarding import parse_polygon, set_zone

    version = set_zone(_site_store(args), args.env, args.name, parse_polygon(args.polygon, "--polygon"))
    print(f"zone {args.name!r} saved (version {version})")
    return 0


def _cmd_env_show(args: argparse.Namespace) -> int:
    import json

    from spoton.site.onboarding import describe

    print(json.dumps(describe(_site_store(args), args.env), indent=1))
    return 0


def _cmd_env_list(args: argparse.Namespace) -> int:
    from spoton.site.onboarding import list_sites

    sites = list_sites(_site_store(args))
    _print_rows(["site", "fps", "cameras", "calibrated", "zones"],
                [(e.name, e.fps, ",".join(e.camera_names),
                  sum(c.calibration is not None for c in e.cameras), len(e.zones)) for e in sites])
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """Materialize in a process of its own: Dagster is imported by orchestration/, never by the core."""
    import subprocess

    command = [sys.executable, "-m", "orchestration.run_environment", args.env, "--workers", str(args.workers)]
    return subprocess.run(command).returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spoton", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    fetch = commands.add_parser("fetch", help="fetch and convert models and sample data into the cache")
    fetch.add_argument("--print", choices=["nanodet_onnx", "mobilenetv2", "mobilenetv2_onnx", "sample_video"],
                       help="print only this artifact's path")
    fetch.set_defaults(func=_cmd_fetch)

    track = commands.add_parser("track", help="detect and track people in one video")
    track.add_argument("video", type=Path)
    track.add_argument("--out", type=Path, required=True, help="output folder")
    track.add_argument("--detector", choices=["nanodet", "yolo"], default="nanodet")
    track.add_argument("--detector-model", type=Path, help="ONNX file (required for yolo)")
    track.add_argument("--detector-precision", choices=["fp32", "int8"], default="fp32",
                       help="NanoDet's weights: int8 costs ~1.7x less CPU per frame, boxes differ slightly")
    track.add_argument("--score-threshold", type=float, default=0.2)
    track.add_argument("--resize", choices=["stretch", "letterbox"], default="stretch")
    track.add_argument("--tracker", choices=["bytetrack", "ocsort", "botsort", "deepocsort"],
                       default="bytetrack")
    track.add_argument("--embedder", choices=["mobilenetv2", "boxmot"], default="mobilenetv2")
    track.add_argument("--embedder-weights", type=Path, help="ReID weights (e.g. osnet_x0_25_msmt17.pt)")
    track.add_argument("--fps", type=float, help="processing rate (default: every frame)")
    track.add_argument("--max-frames", type=int, help="stop after this many processed frames")
    track.add_argument("--calibration", type=Path,
                       help="calibration JSON (image_points/map_points, optional region_m): adds map metres, "
                            "tracks only inside the region; e.g. data/calibration/pets_s2l1_view_001.json")
    track.add_argument("--min-box-height", type=float, default=8.0,
                       help="ignore detections shorter than this many pixels (far-away people)")
    track.add_argument("--frame-rate", type=float, default=7.0,
                       help="the footage's real frame rate, for the tracker's motion model and time gaps")
    track.add_argument("--online-only", action="store_true",
                       help="keep the online tracker ids: no stitching, interpolation or short-track removal")
    track.add_argument("--no-crossings", action="store_true",
                       help="keep the tracker's continuation through crossings (default: re-decided by motion and "
                            "appearance before stitching)")
    track.add_argument("--threads", type=int, help="ONNX Runtime / torch threads (default: every core)")
    track.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                       help="cuda runs the detector on the GPU when ONNX Runtime has CUDA")
    track.add_argument("--no-video", action="store_true", help="skip the annotated MP4")
    track.add_argument("--quiet", action="store_true", help="no progress bar")
    track.set_defaults(func=_cmd_track)

    sql = commands.add_parser("sql", help="query the pipeline's tables (DuckDB); no query: interactive shell")
    sql.add_argument("query", nargs="?", help='e.g. "select count(distinct global_id) from global_identities"')
    sql.add_argument("--catalog", type=Path, default=default_catalog(), help="DuckDB catalog file")
    sql.add_argument("--refresh", action="store_true",
                     help="(re)build the catalog's views over the lake first (live files already show without it)")
    sql.add_argument("--lake", type=Path, help="lake folder for --refresh (default $SPOTON_VAR/lake)")
    sql.set_defaults(func=_cmd_sql)

    evaluate = commands.add_parser(
        "eval", help="score tracks against MOTChallenge ground truth (HOTA, MOTA, IDF1, cross-camera IDF1, map error)")
    evaluate.add_argument("--env", default="pets_s2l1", help="environment whose pipeline output to score")
    evaluate.add_argument("--store", type=Path, help="object-store folder (default $SPOTON_VAR/store)")
    evaluate.add_argument("--lake", type=Path, help="lake folder (default $SPOTON_VAR/lake)")
    evaluate.add_argument("--tracks", type=Path, help="instead: tracks.parquet written by `spoton track`")
    evaluate.add_argument("--gt", type=Path, help="MOTChallenge ground truth of that video (with --tracks)")
    evaluate.add_argument("--frames", help="START:STOP 0-based frames to score with --tracks (default: the GT's)")
    evaluate.add_argument("--processed-only", action="store_true",
                          help="with --tracks: score only frames the tracker processed (e.g. with --fps)")
    evaluate.add_argument("--json", action="store_true", help="print JSON records instead of the table")
    evaluate.set_defaults(func=_cmd_eval)

    export = commands.add_parser("export-mot", help="write the pipeline's tracks as MOTChallenge text per camera")
    export.add_argument("--env", default="pets_s2l1")
    export.add_argument("--lake", type=Path, help="lake folder (default $SPOTON_VAR/lake)")
    export.add_argument("--out", type=Path, required=True, help="folder: writes {out}/{env}/{camera}.txt")
    export.add_argument("--tracker-ids", action="store_true",
                        help="per-camera tracker ids instead of global ids")
    export.set_defaults(func=_cmd_export_mot)

    env = commands.add_parser("env", help="bring your own site: floor plan, cameras, calibration, region, zones")
    env_commands = env.add_subparsers(dest="env_command", required=True)

    def env_command(name: str, help: str, func) -> argparse.ArgumentParser:
        command = env_commands.add_parser(name, help=help)
        command.add_argument("--store", type=Path, help="object-store folder (default $SPOTON_VAR/store)")
        command.set_defaults(func=func)
        return command

    create = env_command("create", "a new site from its floor-plan image and scale", _cmd_env_create)
    create.add_argument("env")
    create.add_argument("--floor-plan", type=Path, required=True, help="PNG or JPEG")
    create.add_argument("--metres-per-pixel", type=float)
    create.add_argument("--scale-points", help="X1,Y1,X2,Y2: two floor-plan pixels (with --distance-m)")
    create.add_argument("--distance-m", type=float, help="metres between the two --scale-points")
    create.add_argument("--origin-m", default="0,0", help="X,Y: the floor metres at the plan's top-left corner")
    create.add_argument("--y-axis", choices=["down", "up"], default="down",
                        help="which way +Y (metres) runs on the plan image")
    create.add_argument("--segment-length-s", type=float, default=60.0,
                        help="length of the sub-videos a camera's video is cut into")

    add_camera = env_command("add-camera", "add a camera from a video file or a stream URI", _cmd_env_add_camera)
    add_camera.add_argument("env")
    add_camera.add_argument("camera")
    source = add_camera.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", type=Path, help="cut into H.264 sub-videos in the store")
    source.add_argument("--uri", help="rtsp://, http:// (MJPEG) or a file path; tested by reading a frame")
    add_camera.add_argument("--fps", type=float, help="the camera's frame rate (default: what the video says)")

    calibrate = env_command("calibrate", "fit a camera's ground-plane calibration from point pairs",
                            _cmd_env_calibrate)
    calibrate.add_argument("env")
    calibrate.add_argument("camera")
    calibrate.add_argument("--points", type=Path, required=True,
                           help="CSV with columns image_x,image_y,map_x,map_y (map in metres)")
    calibrate.add_argument("--max-error-m", type=float, default=0.5, help="refuse an RMS error above this")

    region = env_command("region", "the floor a camera tracks people on, in image pixels", _cmd_env_region)
    region.add_argument("env")
    region.add_argument("camera")
    region.add_argument("--polygon", required=True, help='"x,y;x,y;..." image pixels')

    zone = env_command("zone", "add or replace a named zone on the floor plan (metres)", _cmd_env_zone)
    zone.add_argument("env")
    zone.add_argument("name")
    zone.add_argument("--polygon", required=True, help='"x,y;x,y;..." floor metres')

    show = env_command("show", "print a site (camera passwords hidden)", _cmd_env_show)
    show.add_argument("env")
    env_command("list", "list the sites in the store", _cmd_env_list)

    run = commands.add_parser("run", help="materialize every partition of an environment through Dagster")
    run.add_argument("env")
    run.add_argument("--workers", type=int, default=2, help="segment partitions processed in parallel")
    run.set_defaults(func=_cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpotOnError as error:
        print(f"spoton: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
