"""Identity corrections: the append-only overrides table, their replay, and the pipeline round trip."""
from datetime import datetime, timezone

import pandas as pd
import pytest

from spoton.storage.lake import ParquetLake
from spoton.identity.overrides import (Override, OverrideError, append_override, apply_overrides, empty_overrides,
                              read_overrides)
from spoton.storage.store import LocalStore

ENV = "pets_s2l1"


def resolver_output() -> pd.DataFrame:
    """Three identities: 1 = {a, b}, 2 = {c}, 3 = {d, e}."""
    return pd.DataFrame({"tracklet_id": ["cam1/01/1", "cam2/01/4", "cam1/01/2", "cam3/02/7", "cam1/02/9"],
                         "global_id": [1, 1, 2, 3, 3]})


@pytest.fixture
def lake(tmp_path) -> ParquetLake:
    return ParquetLake(LocalStore(tmp_path / "lake"))


def ids(result) -> dict[str, int]:
    return dict(zip(result.assignments["tracklet_id"], result.assignments["global_id"]))


def test_no_overrides_leaves_the_resolver_alone():
    result = apply_overrides(resolver_output(), empty_overrides())
    assert ids(result) == dict(zip(resolver_output()["tracklet_id"], resolver_output()["global_id"]))
    assert result.assignments["override_version"].isna().all() and result.applied == ()


def test_merge_then_split_replay_in_version_order(lake):
    append_override(lake, ENV, Override("merge", "ana", "cam1/01/2", "cam1/02/9", global_id=2, other_global_id=3))
    append_override(lake, ENV, Override("split", "bo", "cam2/01/4", global_id=1, note="different coat"))
    result = apply_overrides(resolver_output(), read_overrides(lake, ENV))
    assert ids(result) == {"cam1/01/1": 1, "cam2/01/4": 4, "cam1/01/2": 2, "cam3/02/7": 2, "cam1/02/9": 2}
    assert result.applied == (1, 2) and result.skipped == {}
    versions = dict(zip(result.assignments["tracklet_id"], result.assignments["override_version"]))
    assert versions["cam3/02/7"] == 1 and versions["cam2/01/4"] == 2 and pd.isna(versions["cam1/01/1"])


def test_table_is_append_only_with_who_and_when(lake):
    when = datetime(2026, 11, 3, 9, 30, tzinfo=timezone.utc)
    first = append_override(lake, ENV, Override("merge", "ana", "cam1/01/1", "cam1/01/2"), now=when)
    second = append_override(lake, ENV, Override("revoke", "bo", revokes_version=first, note="wrong pair"))
    table = read_overrides(lake, ENV).to_pandas()
    assert (first, second) == (1, 2) and table["version"].tolist() == [1, 2]
    assert table["author"].tolist() == ["ana", "bo"] and table.at[0, "created_at"] == pd.Timestamp(when)
    assert table.at[1, "revokes_version"] == 1
    result = apply_overrides(resolver_output(), read_overrides(lake, ENV))
    assert ids(result)["cam1/01/1"] == 1 and ids(result)["cam1/01/2"] == 2, "the revoked merge is not applied"
    assert result.skipped == {1: "revoked"}


def test_unknown_tracklet_is_skipped_not_fatal(lake):
    append_override(lake, ENV, Override("split", "ana", "cam9/01/1"))
    result = apply_overrides(resolver_output(), read_overrides(lake, ENV))
    assert result.skipped == {1: "unknown tracklet cam9/01/1"} and result.assignments["global_id"].tolist() == [1, 1, 2, 3, 3]


@pytest.mark.parametrize("override, problem", [
    (dict(action="rename", author="ana"), "not one of"),
    (dict(action="merge", author=" "), "author is empty"),
    (dict(action="merge", author="ana", tracklet_id="cam1/01/1"), "other_tracklet_id"),
    (dict(action="merge", author="ana", tracklet_id="cam1/01/1", other_tracklet_id="cam1/01/1"), "with itself"),
    (dict(action="split", author="ana"), "tracklet to take out"),
    (dict(action="revoke", author="ana"), "revokes_version"),
    (dict(action="split", author="ana", tracklet_id="cam1/01/1", revokes_version=1), "only for action 'revoke'"),
])
def test_bad_corrections_are_refused_with_the_fix(override, problem):
    with pytest.raises(OverrideError, match=problem):
        Override(**override)


def test_revoking_a_missing_version_is_refused(lake):
    with pytest.raises(OverrideError, match="no correction version 7"):
        append_override(lake, ENV, Override("revoke", "ana", revokes_version=7))
    assert read_overrides(lake, ENV).num_rows == 0


@pytest.mark.integration
def test_round_trip_override_rematerialize_identities_changed(writable_pipeline_var):
    """Write a merge and a split to the lake, re-materialize global_identities with Dagster: both show."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "apps" / "streamlit"))
    import review_data

    paths = review_data.ReviewPaths.from_var(writable_pipeline_var)
    before = review_data.identities(paths, ENV)
    by_id = before.groupby("global_id")["tracklet_id"].apply(list)
    big = by_id[by_id.map(len) >= 2].index[0]  # an identity with at least two tracklets
    first, second = sorted(by_id.index.difference([big]))[:2]
    moved = by_id[big][-1]
    lake = review_data.lake(paths)
    append_override(lake, ENV, Override("merge", "ana", by_id[first][0], by_id[second][0], global_id=first, other_global_id=second))
    append_override(lake, ENV, Override("split", "bo", moved, global_id=int(big)))

    run = review_data.rematerialize_identities(paths, ENV)
    assert run.success, run.error
    after = review_data.identities(paths, ENV).set_index("tracklet_id")
    assert set(after.loc[by_id[first] + by_id[second], "global_id"]) == {first}
    assert after.at[moved, "global_id"] == before["global_id"].max() + 1
    assert after["global_id"].nunique() == before["global_id"].nunique()  # one merged away, one split off
    assert after.at[moved, "override_version"] == 2
    # downstream assets follow the corrected ids (camera_tracks may drop an identity seen too briefly,
    # never relabel one): every final box carries its tracklet's corrected id, and the merged-away id is gone
    final = review_data.sql(paths, "select distinct tracklet_id, global_id from camera_tracks")
    assert len(final) and (final["global_id"].to_numpy() == after.loc[final["tracklet_id"], "global_id"].to_numpy()).all()
    trajectory_ids = set(review_data.sql(paths, "select distinct global_id from map_trajectories")["global_id"])
    assert second not in trajectory_ids and trajectory_ids <= set(after["global_id"])
    history = review_data.sql(paths, "select version, action, author from identity_overrides order by version")
    assert history.values.tolist() == [[1, "merge", "ana"], [2, "split", "bo"]]
