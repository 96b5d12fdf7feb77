"""Where the live API keeps its lake: a folder beside a local store, S3 beside an S3 store (the prod
profile's ``s3://B/store`` -> ``s3://B/lake``), or what ``SPOTON_LAKE`` says."""
from __future__ import annotations

import pytest

from apps.live_api.settings import Settings
from spoton.storage.store import LocalStore, S3Store

KEYS = {"SPOTON_API_KEYS": "an-admin-key-of-24-chars:admin"}


@pytest.mark.parametrize("env, uri", [
    ({"SPOTON_STORE": "s3://spoton/store"}, "s3://spoton/lake"),
    ({"SPOTON_STORE": "s3://spoton"}, "s3://spoton/lake"),
    ({"SPOTON_STORE": "s3://spoton/site-a/store"}, "s3://spoton/site-a/lake"),
    ({"SPOTON_STORE": "s3://spoton/store", "SPOTON_LAKE": "s3://other/history"}, "s3://other/history"),
    ({"SPOTON_LAKE": "s3://other/history"}, "s3://other/history"),
])
def test_the_lake_is_on_s3_beside_an_s3_store_or_where_spoton_lake_says(env, uri, tmp_path):
    settings = Settings.from_env({**KEYS, "SPOTON_VAR": str(tmp_path), **env}).check()
    assert settings.lake_uri == uri
    lake = settings.open_lake()
    assert isinstance(lake, S3Store) and lake.uri == uri


def test_a_local_lake_beside_a_local_store_or_in_spoton_lake(tmp_path):
    default = Settings.from_env({**KEYS, "SPOTON_STORE": str(tmp_path / "store")}).check()
    assert default.lake_uri is None and default.open_lake().root == (tmp_path / "lake").resolve()
    named = Settings.from_env({**KEYS, "SPOTON_STORE": "s3://spoton/store", "SPOTON_LAKE": str(tmp_path / "l")})
    assert named.check().lake_uri is None and isinstance(named.open_lake(), LocalStore)


def test_a_malformed_s3_lake_is_refused_at_startup(tmp_path):
    with pytest.raises(ValueError, match="SPOTON_LAKE: 's3://' is not an S3 location"):
        Settings.from_env({**KEYS, "SPOTON_VAR": str(tmp_path), "SPOTON_LAKE": "s3://"}).check()
