"""`make demo`'s speed against an older commit's, measured side by side on this machine (issue 19).

    .venv/bin/python bench/demo_speed.py [--old b83c895] [--rounds 2] [--max-source-frames N] [--no-track]

Checks the old commit out into a temporary git worktree (removed at the end) and runs, alternating
old and new in every round, the two steps of `make demo`:
- `spoton track` on the sample video (annotated MP4 + Parquet), the Makefile's first step;
- `python -m orchestration.demo`, the whole Dagster graph on the sample environment; and the
  current tree's `--adaptation` run too (the opt-in appearance_adaptation asset on top).
Every run starts from empty folders (SPOTON_VAR, DAGSTER_HOME, store, lake, output) in a temporary
directory; models and the sample video come from the same SPOTON_CACHE; both trees run on this
interpreter. Per run: wall seconds and the CPU seconds of the child processes
(getrusage(RUSAGE_CHILDREN) deltas); per demo run also Dagster's step durations from its event log,
summed per asset over partitions. Speed is old median / new median (issue 19's target: >= 0.9).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from spoton.artifacts import cache_dir_from, fetch_sample_video

REPO_ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = Path("data") / "calibration" / "pets_s2l1_view_001.json"  # relative to each tree
CACHE = cache_dir_from(os.environ)  # models and the sample video: $SPOTON_CACHE, read here at the edge
SHARED = Path(os.environ.get("SPOTON_SHARED", REPO_ROOT.parent / "shared"))  # the PETS annotation, both trees


@dataclass
class Run:
    row: str
    wall: float
    cpu: float
    load: float  # 1-minute load average when the run started
    steps: dict[str, float] = field(default_factory=dict)  # asset step -> seconds (summed over partitions)


def step_seconds(dagster_home: Path) -> dict[str, float]:
    """Every successful step's duration in this Dagster instance's event log, summed per step key."""
    from dagster import DagsterEventType, DagsterInstance

    totals: dict[str, float] = defaultdict(float)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS):
                event = entry.dagster_event
                totals[event.step_key] += event.event_specific_data.duration_ms / 1000
    return dict(totals)


def child_env(tree: Path, var: Path) -> dict[str, str]:
    """The environment of one run: this process's, minus any SPOTON_* / DAGSTER_HOME that would point
    into a shared folder, plus fresh folders under ``var``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTON_") and k != "DAGSTER_HOME"}
    env.update(PYTHONPATH=str(tree), SPOTON_CACHE=str(CACHE), SPOTON_SHARED=str(SHARED),
               SPOTON_VAR=str(var), DAGSTER_HOME=str(var / "dagster_home"), PYTHONUNBUFFERED="1")
    return env


def timed(row: str, command: list[str], tree: Path, var: Path) -> Run:
    """Run ``command`` in ``tree`` with fresh folders under ``var``; its wall and children's CPU seconds."""
    var.mkdir(parents=True)
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=child_env(tree, var), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise SystemExit(f"{row}: {' '.join(command)} failed (exit {done.returncode}) in {tree}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    steps = step_seconds(var / "dagster_home") if (var / "dagster_home").is_dir() else {}
    print(f"  {row:<40} wall {wall:7.1f} s  cpu {cpu:7.1f} s  load {load:4.2f}", flush=True)
    return Run(row, wall, cpu, load, steps)


def median(runs: list[Run], row: str, attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs if r.row == row)


def print_tables(runs: list[Run], rows: list[tuple[str, str | None]]) -> None:
    print("\n| row | runs | wall median s | CPU median s | speed, wall (old/new) | speed, CPU (old/new) |")
    print("|---|---|---|---|---|---|")
    for row, baseline in rows:
        wall, cpu = median(runs, row, "wall"), median(runs, row, "cpu")
        count = sum(r.row == row for r in runs)
        if baseline is None:
            print(f"| {row} | {count} | {wall:.1f} | {cpu:.1f} | | |")
        else:
            print(f"| {row} | {count} | {wall:.1f} | {cpu:.1f} | {median(runs, baseline, 'wall') / wall:.3f} "
                  f"| {median(runs, baseline, 'cpu') / cpu:.3f} |")

    demo_rows = [row for row, _ in rows if any(r.steps for r in runs if r.row == row)]
    keys = sorted({k for r in runs for k in r.steps})
    if not keys:
        return
    print("\nDagster step seconds (median over runs, summed over partitions):\n")
    print("| asset step | " + " | ".join(demo_rows) + " |")
    print("|---|" + "---|" * len(demo_rows))
    for key in keys:
        cells = []
        for row in demo_rows:
            values = [r.steps.get(key, 0.0) for r in runs if r.row == row]
            cells.append(f"{statistics.median(values):.2f}" if any(values) else "-")
        print(f"| {key} | " + " | ".join(cells) + " |")


@dataclass(frozen=True)
class Job:
    row: str
    command: tuple[str, ...]
    tree: Path
    baseline: str | None = None  # the old row this one is compared with
    out: bool = False  # takes an --out folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default="b83c895", help="the commit to compare with (issue 19: the round's start)")
    parser.add_argument("--rounds", type=int, default=2, help="old/new alternations of every step")
    parser.add_argument("--max-source-frames", type=int, help="demo on the first N source frames (a quick check)")
    parser.add_argument("--no-track", action="store_true", help="time the Dagster demo only, not `spoton track`")
    args = parser.parse_args()
    python = sys.executable
    video = fetch_sample_video(CACHE)
    limit = args.max_source_frames
    track = (python, "-m", "spoton.cli", "track", str(video), "--calibration", str(CALIBRATION),
             *(("--max-frames", str(limit)) if limit else ()))
    demo = (python, "-m", "orchestration.demo", *(("--max-source-frames", str(limit)) if limit else ()))

    with tempfile.TemporaryDirectory(prefix="demo_speed_") as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "--quiet", str(old_tree), args.old],
                       check=True)
        old_track, old_demo = f"spoton track, old {args.old}", f"orchestration.demo, old {args.old}"
        jobs = [] if args.no_track else [Job(old_track, track, old_tree, out=True),
                                         Job("spoton track, new", track, REPO_ROOT, old_track, out=True)]
        jobs += [Job(old_demo, demo, old_tree), Job("orchestration.demo, new", demo, REPO_ROOT, old_demo),
                 Job("orchestration.demo --adaptation, new", (*demo, "--adaptation"), REPO_ROOT, old_demo)]
        print(f"python {python}; SPOTON_CACHE {CACHE}; load {os.getloadavg()[0]:.2f}")
        runs = []
        try:
            for round_ in range(args.rounds):
                print(f"round {round_ + 1}/{args.rounds}")
                for k, job in enumerate(jobs):
                    var = Path(tmp) / f"r{round_}j{k}"
                    command = [*job.command, *(("--out", str(var / "out")) if job.out else ())]
                    runs.append(timed(job.row, command, job.tree, var))
                    subprocess.run(["rm", "-rf", str(var)], check=True)
        finally:
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(old_tree)], check=False)

    print(f"\n{args.rounds} rounds, {f'{limit} source frames' if limit else 'whole video'}; load average at "
          f"the runs' starts {min(r.load for r in runs):.2f}..{max(r.load for r in runs):.2f}")
    print_tables(runs, [(job.row, job.baseline) for job in jobs])
    return 0


if __name__ == "__main__":
    sys.exit(main())
