"""Compare every lake table of two builds row for row: the check that a refactor changed no output.

    .venv/bin/python bench/compare_lake.py A B [--atol 1e-9]

A and B are lake folders (``var/lake``) or deployment folders holding one (``var``). Each
table's Parquet files (all partitions) are read, columns compared by name, rows sorted on every
scalar column and compared: floats within ``--atol``, everything else exactly (list cells, e.g.
embeddings, element by element). Prints one row per table; exits 1 when any table differs.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def lake_dir(path: Path) -> Path:
    return path / "lake" if (path / "lake").is_dir() else path


def read_table(lake: Path, table: str) -> pd.DataFrame | None:
    files = sorted((lake / table).rglob("*.parquet"))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pandas()


def _is_list(series: pd.Series) -> bool:
    return series.dtype == object and series.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any()


def compare(a: pd.DataFrame, b: pd.DataFrame, atol: float) -> tuple[str, float]:
    """(verdict, largest float difference) of two tables."""
    if sorted(a.columns) != sorted(b.columns):
        return f"columns differ: only A {sorted(set(a.columns) - set(b.columns))}, only B {sorted(set(b.columns) - set(a.columns))}", float("nan")
    if len(a) != len(b):
        return f"row counts differ ({len(a)} vs {len(b)})", float("nan")
    lists = [c for c in a.columns if _is_list(a[c]) or _is_list(b[c])]
    keys = [c for c in a.columns if c not in lists]
    a = a.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    b = b[a.columns].sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    worst, bad = 0.0, []
    for column in a.columns:
        x, y = a[column], b[column]
        if column in lists:
            x = np.array([np.asarray(v, np.float64) for v in x], dtype=object)
            y = np.array([np.asarray(v, np.float64) for v in y], dtype=object)
            diffs = [np.abs(p - q).max() if p.shape == q.shape and p.size else (0.0 if p.shape == q.shape else np.inf)
                     for p, q in zip(x, y)]
            diff = max(diffs, default=0.0)
        elif pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            xv, yv = x.to_numpy(np.float64), y.to_numpy(np.float64)
            same_nan = np.isnan(xv) == np.isnan(yv)
            diff = float(np.nanmax(np.abs(xv - yv), initial=0.0)) if same_nan.all() else np.inf
        else:
            diff = 0.0 if x.astype(str).equals(y.astype(str)) else np.inf
        worst = max(worst, diff if np.isfinite(diff) else worst)
        if not diff <= atol:
            bad.append(column)
    return ("same" if not bad else f"differ in {', '.join(bad)}"), worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--atol", type=float, default=1e-9, help="float tolerance")
    args = parser.parse_args()
    a, b = lake_dir(args.a), lake_dir(args.b)
    tables = sorted({p.name for p in a.iterdir() if p.is_dir()} | {p.name for p in b.iterdir() if p.is_dir()})
    print(f"| table | rows A | rows B | max float diff | verdict |\n|---|---:|---:|---:|---|")
    same = True
    for table in tables:
        ta, tb = read_table(a, table), read_table(b, table)
        if ta is None or tb is None:
            verdict, worst = f"only in {'B' if ta is None else 'A'}", float("nan")
        else:
            verdict, worst = compare(ta, tb, args.atol)
        same &= verdict == "same"
        rows = lambda t: "-" if t is None else str(len(t))  # noqa: E731
        print(f"| {table} | {rows(ta)} | {rows(tb)} | {worst:.1e} | {verdict} |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
