"""Bearer tokens: API keys and HS256 JWTs, role order, and settings that refuse a locked-out API."""
from __future__ import annotations

import time

import jwt
import pytest

from apps.live_api.auth import AuthConfig, AuthError, Role, authenticate_token, authorize, issue_jwt
from apps.live_api.settings import REPO_ROOT, Settings

SECRET = "s3cret-0123456789abcdef0123456789ab"
LONG_KEY = "k-0123456789abcdef"
CONFIG = AuthConfig(api_keys=AuthConfig.parse_api_keys("k-admin:admin, k-view:viewer"), jwt_secret=SECRET)


def test_api_keys_and_roles():
    assert authenticate_token("k-admin", CONFIG).role is Role.admin
    viewer = authenticate_token("k-view", CONFIG)
    assert authorize(viewer, Role.viewer) is viewer
    with pytest.raises(AuthError) as info:
        authorize(viewer, Role.operator)
    assert info.value.status == 403 and "operator" in info.value.detail
    assert Role.viewer < Role.operator < Role.admin


@pytest.mark.parametrize("token, words", [(None, "missing"), ("", "missing"), ("k-admin2", "unknown API key")])
def test_bad_tokens_are_401(token, words):
    with pytest.raises(AuthError) as info:
        authenticate_token(token, CONFIG)
    assert info.value.status == 401 and words in info.value.detail


def test_jwt():
    principal = authenticate_token(issue_jwt(SECRET, "dana", "operator"), CONFIG)
    assert (principal.subject, principal.role) == ("dana", Role.operator)
    for token, words in [(issue_jwt("another-secret-0123456789abcdef01", "dana", "admin"), "invalid token"),
                         (issue_jwt(SECRET, "dana", "admin", ttl_s=-5), "expired"),
                         (jwt.encode({"sub": "x", "exp": int(time.time()) + 60, "role": "king"}, SECRET), "unknown role"),
                         (jwt.encode({"sub": "x", "role": "admin"}, SECRET), "exp")]:
        with pytest.raises(AuthError) as info:
            authenticate_token(token, CONFIG)
        assert info.value.status == 401 and words in info.value.detail, (words, info.value.detail)
    # without a configured secret a JWT is just an unknown token
    with pytest.raises(AuthError):
        authenticate_token(issue_jwt(SECRET, "dana", "admin"), AuthConfig(api_keys={"k": Role.admin}))


def test_settings_from_env_and_their_errors(tmp_path):
    settings = Settings.from_env({"SPOTON_STORE": str(tmp_path), "SPOTON_API_KEYS": f"{LONG_KEY}:admin",
                                  "SPOTON_CORS_ORIGINS": "http://a.example, http://b.example",
                                  "REDIS_URL": "redis://127.0.0.1:6379/0"}).check()
    assert settings.store_root == tmp_path and settings.auth.api_keys == {LONG_KEY: Role.admin}
    assert settings.cors_origins == ("http://a.example", "http://b.example")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    with pytest.raises(ValueError, match="no credentials"):
        Settings.from_env({"SPOTON_STORE": str(tmp_path)}).check()
    with pytest.raises(ValueError, match="key:role"):
        Settings.from_env({"SPOTON_API_KEYS": "justakey"})
    with pytest.raises(ValueError, match="unknown role"):
        Settings.from_env({"SPOTON_API_KEYS": "k:superuser"})
    with pytest.raises(ValueError, match="SPOTON_TICK_RATE"):
        Settings.from_env({"SPOTON_API_KEYS": f"{LONG_KEY}:admin", "SPOTON_TICK_RATE": "100"}).check()
    with pytest.raises(ValueError, match="not a number"):
        Settings.from_env({"SPOTON_TICK_RATE": "fast"})


def test_an_s3_store_setting_opens_an_s3_store_and_a_bad_one_is_refused(tmp_path):
    settings = Settings.from_env({"SPOTON_STORE": "s3://spoton/store", "SPOTON_VAR": str(tmp_path),
                                  "SPOTON_S3_ENDPOINT": "http://127.0.0.1:8333", "AWS_REGION": "eu-west-1",
                                  "SPOTON_API_KEYS": f"{LONG_KEY}:admin"}).check()
    store = settings.open_store()  # no call to S3 yet
    assert (store.bucket, store.prefix, store.uri) == ("spoton", "store", "s3://spoton/store")
    assert store.client.meta.endpoint_url == "http://127.0.0.1:8333"
    assert store.client.meta.region_name == "eu-west-1"
    assert settings.source_allow_list().media_roots == (REPO_ROOT / "data",), \
        "on S3, file sources do not get the local cache folder as a media root"
    with pytest.raises(ValueError, match="SPOTON_STORE.*s3://bucket"):
        Settings.from_env({"SPOTON_STORE": "s3:///store", "SPOTON_API_KEYS": f"{LONG_KEY}:admin"}).check()


@pytest.mark.parametrize("env, words", [
    ({"SPOTON_API_KEYS": "short-key:admin"}, "shorter than 16"),
    ({"SPOTON_JWT_SECRET": "only-31-bytes-0123456789abcdef0"}, "31 bytes"),
    ({"SPOTON_API_KEYS": f"{LONG_KEY}:admin", "SPOTON_JWT_MAX_LIFETIME_S": "0"}, "MAX_LIFETIME"),
    ({"SPOTON_API_KEYS": f"{LONG_KEY}:admin", "SPOTON_SOURCE_HOSTS": "10.0.0.0/33"}, "SPOTON_SOURCE_HOSTS"),
])
def test_weak_secrets_and_bad_lists_refused_at_startup(tmp_path, env, words):
    with pytest.raises(ValueError, match=words) as info:
        Settings.from_env({"SPOTON_STORE": str(tmp_path), **env}).check()
    assert "short-key" not in str(info.value) and "0123456789abcdef0" not in str(info.value)


def test_generated_and_fixture_credentials_are_strong(tmp_path):
    from live_api_server import JWT_SECRET, KEYS

    keys = ",".join(f"{key}:{role}" for role, key in KEYS.items())
    Settings.from_env({"SPOTON_STORE": str(tmp_path), "SPOTON_API_KEYS": keys,
                       "SPOTON_JWT_SECRET": JWT_SECRET}).check()
    import secrets  # what `make live` generates when no key is configured (apps/live_api/app.py main)
    AuthConfig(api_keys={secrets.token_urlsafe(18): Role.admin}).check()


def test_jwt_lifetime_audience_and_issuer():
    config = AuthConfig(jwt_secret=SECRET, jwt_max_lifetime_s=3600, jwt_audience="spoton", jwt_issuer="idp")
    good = issue_jwt(SECRET, "erin", "viewer", ttl_s=600, audience="spoton", issuer="idp")
    assert authenticate_token(good, config).subject == "erin"
    too_long = issue_jwt(SECRET, "erin", "viewer", ttl_s=7200, audience="spoton", issuer="idp")
    no_iat = jwt.encode({"sub": "x", "role": "admin", "exp": 2**33, "aud": "spoton", "iss": "idp"}, SECRET)
    for token, words in [(too_long, "longer than"), (no_iat, "longer than"),
                         (issue_jwt(SECRET, "erin", "viewer", audience="other", issuer="idp"), "audience"),
                         (issue_jwt(SECRET, "erin", "viewer", issuer="idp"), "aud"),
                         (issue_jwt(SECRET, "erin", "viewer", audience="spoton", issuer="evil"), "issuer")]:
        with pytest.raises(AuthError) as info:
            authenticate_token(token, config)
        assert info.value.status == 401 and words in info.value.detail.lower(), (words, info.value.detail)
    # the default maximum is a day: a year-long token is refused without any setting
    with pytest.raises(AuthError, match="longer than"):
        authenticate_token(issue_jwt(SECRET, "erin", "viewer", ttl_s=365 * 86400), CONFIG)
