"""Do two lakes hold the same tables? Column names and types, and rows (in any order), file by file.

For a refactoring that must not change the pipeline's output: build the lake before and after
(``make demo`` on each commit, or ``python -m orchestration.demo`` into two folders), then

    .venv/bin/python bench/compare_lakes.py BEFORE/lake AFTER/lake

Prints one line per Parquet file (same / which columns or rows differ) and exits 1 on a difference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as text in one order: lists (embeddings) become tuples, NaN and None the same text."""
    text = frame.map(lambda v: str(tuple(v)) if hasattr(v, "__len__") and not isinstance(v, str) else str(v))
    return text.sort_values(list(text.columns), kind="mergesort").reset_index(drop=True)


def compare_file(before: Path, after: Path) -> list[str]:
    """What differs between two Parquet files (empty when they hold the same typed rows)."""
    a, b = pq.read_table(before), pq.read_table(after)
    types_a = {f.name: str(f.type) for f in a.schema}
    types_b = {f.name: str(f.type) for f in b.schema}
    problems = [f"column {name}: {types_a.get(name, 'absent')} -> {types_b.get(name, 'absent')}"
                for name in dict.fromkeys([*types_a, *types_b]) if types_a.get(name) != types_b.get(name)]
    if problems:
        return problems
    rows_a, rows_b = _comparable(a.to_pandas()), _comparable(b.to_pandas()[a.column_names])
    if len(rows_a) != len(rows_b):
        return [f"{len(rows_a)} rows -> {len(rows_b)} rows"]
    differing = [c for c in rows_a.columns if not rows_a[c].equals(rows_b[c])]
    return [f"values differ in {', '.join(differing)}"] if differing else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    files = sorted({p.relative_to(root) for root in (args.before, args.after) for p in root.rglob("*.parquet")})
    different = 0
    for relative in files:
        if not (args.before / relative).is_file() or not (args.after / relative).is_file():
            problems = [f"only in {args.before if (args.before / relative).is_file() else args.after}"]
        else:
            problems = compare_file(args.before / relative, args.after / relative)
        different += bool(problems)
        print(f"{relative}: {'; '.join(problems) or 'same'}")
    print(f"{len(files) - different} of {len(files)} files the same")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
