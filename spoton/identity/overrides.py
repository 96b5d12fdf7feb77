"""Analyst corrections of global identities: an append-only, versioned overrides table.

The resolver (:mod:`spoton.identity.resolver`) renumbers identities on every run, so a correction names
*tracklets*, which are stable (``camera/segment/track_id``), not global ids:

- ``merge``: the identity holding ``tracklet_id`` and the one holding ``other_tracklet_id`` are
  one person;
- ``split``: ``tracklet_id`` is a person of its own, taken out of its identity;
- ``revoke``: undo the correction with version ``revokes_version``.

Each row records who made it and when (UTC), and the global ids it was made against (for the
reader; never used to apply it). Nothing is ever rewritten: a mistake is revoked by a new row.
:func:`apply_overrides` replays the rows in version order on the resolver's assignments, so
re-materializing ``global_identities`` gives the corrected identities again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import IDENTITY_OVERRIDES

TABLE = IDENTITY_OVERRIDES.name
ACTIONS = ("merge", "split", "revoke")


class OverrideError(ValueError):
    """A correction that cannot be recorded as given."""


@dataclass(frozen=True)
class Override:
    """One correction, as the app or a script asks for it (version/time are set on append)."""

    action: str
    author: str
    tracklet_id: str | None = None
    other_tracklet_id: str | None = None
    revokes_version: int | None = None
    global_id: int | None = None
    other_global_id: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise OverrideError(f"action {self.action!r} is not one of {ACTIONS}")
        if not self.author or not self.author.strip():
            raise OverrideError("author is empty: say who makes the correction (a name or login)")
        if self.action == "merge" and not (self.tracklet_id and self.other_tracklet_id):
            raise OverrideError("merge needs tracklet_id and other_tracklet_id: one tracklet of each identity")
        if self.action == "merge" and self.tracklet_id == self.other_tracklet_id:
            raise OverrideError(f"merge of tracklet {self.tracklet_id!r} with itself: pick a tracklet of the other identity")
        if self.action == "split" and not self.tracklet_id:
            raise OverrideError("split needs tracklet_id: the tracklet to take out of its identity")
        if self.action != "revoke" and self.revokes_version is not None:
            raise OverrideError(f"revokes_version is only for action 'revoke', not {self.action!r}")
        if self.action == "revoke" and self.revokes_version is None:
            raise OverrideError("revoke needs revokes_version: the version of the correction to undo")


@dataclass(frozen=True)
class AppliedOverrides:
    """Corrected assignments plus what happened to each correction."""

    assignments: pd.DataFrame  # tracklet_id, global_id, override_version (last correction that moved it, or NA)
    applied: tuple[int, ...]
    skipped: dict[int, str]  # version -> why (unknown tracklet, revoked, ...)


def empty_overrides() -> pa.Table:
    return IDENTITY_OVERRIDES.schema.empty_table()


def read_overrides(lake: ParquetLake, environment: str) -> pa.Table:
    """The environment's corrections, oldest first; an empty table if there are none yet."""
    key = f"{TABLE}/{environment}.parquet"
    if not lake.store.exists(key):
        return empty_overrides()
    table = IDENTITY_OVERRIDES.check(lake.read(TABLE, environment), stored=True)
    return table.select(IDENTITY_OVERRIDES.names).sort_by("version")


def append_override(lake: ParquetLake, environment: str, override: Override,
                    now: datetime | None = None) -> int:
    """Append one correction (atomic rewrite of the environment's file); returns its version.

    One writer at a time: two analysts saving in the same instant could lose one row.
    """
    existing = read_overrides(lake, environment)
    versions = existing["version"].to_pylist()
    if override.action == "revoke" and override.revokes_version not in versions:
        raise OverrideError(f"there is no correction version {override.revokes_version} to revoke in "
                            f"{environment}; versions are {versions}")
    version = (max(versions) if versions else 0) + 1
    row = {"version": version, "action": override.action, "tracklet_id": override.tracklet_id,
           "other_tracklet_id": override.other_tracklet_id, "revokes_version": override.revokes_version,
           "global_id": override.global_id, "other_global_id": override.other_global_id,
           "author": override.author.strip(), "created_at": now or datetime.now(timezone.utc),
           "note": override.note}
    added = IDENTITY_OVERRIDES.table(pa.Table.from_pylist([row]))
    lake.write(TABLE, IDENTITY_OVERRIDES.table(pa.concat_tables([existing, added])), environment)
    return version


def apply_overrides(assignments: pd.DataFrame, overrides: pa.Table | pd.DataFrame) -> AppliedOverrides:
    """Replay corrections in version order on ``assignments`` (tracklet_id, global_id).

    A merge keeps the smaller of the two global ids; a split gives the tracklet a new id (above
    every id the resolver gave). Other ids are left as the resolver numbered them. Corrections
    naming a tracklet that is not in ``assignments`` (re-processed with another tracker, say)
    are skipped and reported, not fatal.
    """
    rows = overrides.to_pandas() if isinstance(overrides, pa.Table) else overrides
    gid = dict(zip(assignments["tracklet_id"].astype(str), assignments["global_id"].astype(np.int64)))
    moved: dict[str, int] = {}
    next_id = max(gid.values(), default=0) + 1  # ids freed by merges are never handed out again
    rows = rows.sort_values("version", kind="mergesort")
    revoked = {int(v) for v in rows.loc[rows["action"] == "revoke", "revokes_version"].dropna()}
    applied, skipped = [], {}
    for row in rows.itertuples(index=False):
        version = int(row.version)
        if row.action == "revoke":
            applied.append(version)
            continue
        if version in revoked:
            skipped[version] = "revoked"
            continue
        missing = [t for t in (row.tracklet_id, row.other_tracklet_id if row.action == "merge" else None)
                   if t is not None and t not in gid]
        if missing:
            skipped[version] = f"unknown tracklet {', '.join(missing)}"
            continue
        if row.action == "merge":
            a, b = gid[row.tracklet_id], gid[row.other_tracklet_id]
            keep, drop = min(a, b), max(a, b)
            for tracklet, value in gid.items():
                if value == drop:
                    gid[tracklet] = keep
                    moved[tracklet] = version
        else:  # split
            gid[row.tracklet_id] = next_id
            next_id += 1
            moved[row.tracklet_id] = version
        applied.append(version)
    out = assignments.copy()
    out["global_id"] = out["tracklet_id"].astype(str).map(gid).astype(np.int64)
    out["override_version"] = pd.array([moved.get(str(t)) for t in out["tracklet_id"]], dtype="Int64")
    return AppliedOverrides(out, tuple(applied), skipped)
