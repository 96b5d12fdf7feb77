"""Live API settings, read from environment variables only (secrets included)."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from spoton.artifacts import DEFAULT_CACHE_DIR, cache_dir_from
from spoton.models.detector import PRECISIONS
from spoton.perception.config import PerceptionConfig

from apps.live_api.auth import AuthConfig
from spoton.live.sources import SourceAllowList
from spoton.storage.store import (LocalStore, ObjectStore, S3Retry, S3Store, lake_beside, parse_s3_uri,
                                  s3_client)
from apps.live_api.exposure import EXPOSURES

REPO_ROOT = Path(__file__).resolve().parents[2]
# SPOTON_DEPLOYMENT -> default exposure of (/metrics, the API docs)
DEPLOYMENT_EXPOSURE = {"dev": ("public", "public"), "prod": ("auth", "off")}


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        raise ValueError(f"{name}={env[name]!r} is not a number") from None


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    """A comma-separated variable; None when it is unset (the default applies)."""
    if name not in env:
        return None
    return tuple(item.strip() for item in env[name].split(",") if item.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name, default))
    except ValueError:
        raise ValueError(f"{name}={env[name]!r} is not an integer") from None


@dataclass(frozen=True)
class Settings:
    """Everything the app factory needs; ``from_env`` documents the variable of each field."""

    store_root: Path  # a local store; with store_s3 set, only the folder of the S3 store's cache
    store_s3: str | None = None  # s3://bucket/prefix: the store is there (sessions and media read it, no copy)
    s3_endpoint: str | None = None  # None: AWS; SeaweedFS etc.: http://host:8333 (keys: boto3's usual chain)
    s3_region: str = "us-east-1"
    auth: AuthConfig = field(default_factory=AuthConfig)
    redis_url: str | None = None
    redis_prefix: str = "spoton"
    cors_origins: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    build_sample_environment: bool = True  # build pets_s2l1 into the store when it is missing
    sample_max_source_frames: int | None = None  # a shorter sample (tests)
    max_sessions: int = 4
    default_tick_rate_hz: float = 10.0
    max_tick_rate_hz: float = 30.0
    client_queue_size: int = 8  # ticks buffered per WebSocket client; older ones are dropped
    commands_per_second: float = 10.0  # per token (all its connections), burst of twice that
    ws_max_clients: int = 256  # WebSocket connections on this instance
    ws_max_clients_per_session: int = 32
    ws_max_message_bytes: int = 4096  # a bigger command gets an error reply
    # permessage-deflate compresses every tick once per client (framing ~10x the CPU, bench/live_latency.py);
    # off, the one serialised tick goes out as is to every client
    ws_compression: bool = False
    media_roots: tuple[Path, ...] | None = None  # file sources: None = the store and the project's data/
    source_hosts: tuple[str, ...] | None = None  # rtsp/http sources: names or CIDR networks; None = any
    status_interval_s: float = 1.0
    ort_threads: int = 1
    camera_workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # a session's cameras in parallel
    tracker: str = "bytetrack"
    detector_precision: str = "fp32"  # "int8": NanoDet's INT8 copy (less CPU per frame, slightly other boxes)
    webrtc_max_peers: int = 32  # WebRTC peer connections on this instance (WHEP viewers and WHIP publishers)
    webrtc_max_peers_per_session: int = 8
    webrtc_ice_hosts: tuple[str, ...] | None = None  # addresses for ICE host candidates; None: all interfaces
    lake_root: Path | None = None  # the Parquet lake (live history, history REST); None: beside the store
    lake_s3: str | None = None  # s3://bucket/prefix of the lake; the default when the store is on S3 (lake_uri)
    live_history: bool = True  # sessions append their tracks to the lake
    history_flush_s: float = 5.0  # a session's tracks reach the lake within about this
    appearance_every_frames: int = 0  # live global ids: a crop per track every N frames (0: position only;
    # off by default: +28 ms a frame on 2 cores and wrong re-acquisitions in bench/follow.py --live)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    expose_metrics: str = "public"  # public | auth | off (exposure.py); prod default: auth
    expose_docs: str = "public"  # /docs, /redoc, /openapi.json; prod default: off
    site_job_workers: int = 1  # site camera upload jobs (transcode, cut) run at once
    cache_dir: Path = DEFAULT_CACHE_DIR  # models and the sample video (spoton fetch)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        var = Path(env.get("SPOTON_VAR", REPO_ROOT / "var"))
        sample_max = env.get("SPOTON_SAMPLE_MAX_FRAMES")
        deployment = env.get("SPOTON_DEPLOYMENT", "dev")
        if deployment not in DEPLOYMENT_EXPOSURE:
            raise ValueError(f"SPOTON_DEPLOYMENT={deployment!r}: use one of {', '.join(DEPLOYMENT_EXPOSURE)}")
        metrics_default, docs_default = DEPLOYMENT_EXPOSURE[deployment]
        store = env.get("SPOTON_STORE", str(var / "store"))
        s3 = store if store.startswith("s3://") else None
        return cls(
            store_root=var / "s3-cache" if s3 else Path(store),
            store_s3=s3,
            s3_endpoint=env.get("SPOTON_S3_ENDPOINT") or None,
            s3_region=env.get("AWS_REGION", "us-east-1"),
            auth=AuthConfig(api_keys=AuthConfig.parse_api_keys(env.get("SPOTON_API_KEYS", "")),
                            jwt_secret=env.get("SPOTON_JWT_SECRET") or None,
                            jwt_max_lifetime_s=_float(env, "SPOTON_JWT_MAX_LIFETIME_S", 86400.0),
                            jwt_audience=env.get("SPOTON_JWT_AUDIENCE") or None,
                            jwt_issuer=env.get("SPOTON_JWT_ISSUER") or None),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("SPOTON_REDIS_PREFIX", "spoton"),
            cors_origins=tuple(o.strip() for o in env.get("SPOTON_CORS_ORIGINS", "").split(",") if o.strip()),
            host=env.get("SPOTON_LIVE_HOST", "127.0.0.1"),
            port=_int(env, "SPOTON_LIVE_PORT", 8000),
            build_sample_environment=env.get("SPOTON_BUILD_SAMPLE", "1") not in ("0", "false", "no"),
            sample_max_source_frames=int(sample_max) if sample_max else None,
            max_sessions=_int(env, "SPOTON_MAX_SESSIONS", 4),
            default_tick_rate_hz=_float(env, "SPOTON_TICK_RATE", 10.0),
            max_tick_rate_hz=_float(env, "SPOTON_MAX_TICK_RATE", 30.0),
            client_queue_size=_int(env, "SPOTON_CLIENT_QUEUE", 8),
            commands_per_second=_float(env, "SPOTON_COMMANDS_PER_S", 10.0),
            ws_max_clients=_int(env, "SPOTON_WS_MAX_CLIENTS", 256),
            ws_max_clients_per_session=_int(env, "SPOTON_WS_MAX_CLIENTS_PER_SESSION", 32),
            ws_max_message_bytes=_int(env, "SPOTON_WS_MAX_MESSAGE_BYTES", 4096),
            ws_compression=env.get("SPOTON_WS_COMPRESSION", "0") not in ("0", "false", "no", ""),
            media_roots=(None if (roots := _list(env, "SPOTON_MEDIA_ROOTS")) is None
                         else tuple(Path(r) for r in roots)),
            source_hosts=_list(env, "SPOTON_SOURCE_HOSTS"),
            ort_threads=_int(env, "SPOTON_ORT_THREADS", 1),
            camera_workers=_int(env, "SPOTON_CAMERA_WORKERS", os.cpu_count() or 1),
            expose_metrics=env.get("SPOTON_EXPOSE_METRICS", metrics_default),
            expose_docs=env.get("SPOTON_EXPOSE_DOCS", docs_default),
            tracker=env.get("SPOTON_TRACKER", "bytetrack"),
            detector_precision=env.get("SPOTON_DETECTOR_PRECISION", "fp32"),
            webrtc_max_peers=_int(env, "SPOTON_WEBRTC_MAX_PEERS", 32),
            webrtc_max_peers_per_session=_int(env, "SPOTON_WEBRTC_MAX_PEERS_PER_SESSION", 8),
            webrtc_ice_hosts=_list(env, "SPOTON_WEBRTC_ICE_HOSTS"),
            site_job_workers=_int(env, "SPOTON_SITE_JOB_WORKERS", 1),
            lake_root=Path(lake) if (lake := env.get("SPOTON_LAKE")) and not lake.startswith("s3://") else None,
            lake_s3=lake if lake and lake.startswith("s3://") else None,
            live_history=env.get("SPOTON_LIVE_HISTORY", "1") not in ("0", "false", "no"),
            history_flush_s=_float(env, "SPOTON_HISTORY_FLUSH_S", 5.0),
            appearance_every_frames=_int(env, "SPOTON_APPEARANCE_EVERY", 0),
            cache_dir=cache_dir_from(env),
        )

    @property
    def lake(self) -> Path:
        """The lake folder: ``SPOTON_LAKE``, else ``lake/`` beside the store (``$SPOTON_VAR/lake``, where
        the pipeline writes, for the default store). Unused when the lake is on S3 (``lake_uri``)."""
        return self.lake_root if self.lake_root is not None else self.store_root.parent / "lake"

    @property
    def lake_uri(self) -> str | None:
        """The lake's ``s3://`` location, or None for a local lake: ``SPOTON_LAKE=s3://...``; else, when the
        store is on S3 and ``SPOTON_LAKE`` names no folder, ``lake`` beside the store's prefix (the prod
        profile's layout: ``s3://B/store`` -> ``s3://B/lake``, where the pipeline writes)."""
        if self.lake_s3 is not None:
            return self.lake_s3
        if self.store_s3 is None or self.lake_root is not None:
            return None
        return lake_beside(self.store_s3)

    def perception(self) -> PerceptionConfig:
        """Live sessions on the one perception configuration: every frame, the configured tracker."""
        return PerceptionConfig(tracker=self.tracker, threads=self.ort_threads, camera_workers=self.camera_workers,
                                detector_precision=self.detector_precision, cache_dir=self.cache_dir)

    def check(self) -> "Settings":
        """Refuse to start with no way in: an API with no keys and no JWT secret is useless."""
        if not self.auth.api_keys and not self.auth.jwt_secret:
            raise ValueError("no credentials configured: set SPOTON_API_KEYS='key:admin,...' and/or "
                             "SPOTON_JWT_SECRET (roles: viewer, operator, admin)")
        if not 0 < self.default_tick_rate_hz <= self.max_tick_rate_hz:
            raise ValueError(f"need 0 < SPOTON_TICK_RATE ({self.default_tick_rate_hz}) <= "
                             f"SPOTON_MAX_TICK_RATE ({self.max_tick_rate_hz})")
        if self.history_flush_s <= 0:
            raise ValueError(f"SPOTON_HISTORY_FLUSH_S must be > 0, got {self.history_flush_s}")
        if self.camera_workers < 1:
            raise ValueError("SPOTON_CAMERA_WORKERS must be >= 1 (1: a session's cameras one after the other)")
        if self.detector_precision not in PRECISIONS:
            raise ValueError(f"SPOTON_DETECTOR_PRECISION must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.detector_precision!r}")
        if self.client_queue_size < 1:
            raise ValueError("SPOTON_CLIENT_QUEUE must be >= 1")
        if self.site_job_workers < 1:
            raise ValueError("SPOTON_SITE_JOB_WORKERS must be >= 1")
        if min(self.ws_max_clients, self.ws_max_clients_per_session, self.ws_max_message_bytes) < 1:
            raise ValueError("SPOTON_WS_MAX_CLIENTS, SPOTON_WS_MAX_CLIENTS_PER_SESSION and "
                             "SPOTON_WS_MAX_MESSAGE_BYTES must be >= 1")
        self.auth.check()
        for name, uri in (("SPOTON_STORE", self.store_s3), ("SPOTON_LAKE", self.lake_s3)):
            if uri is not None:
                try:
                    parse_s3_uri(uri)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        self.source_allow_list()  # a malformed SPOTON_SOURCE_HOSTS entry fails here, at startup
        for name, value in (("SPOTON_EXPOSE_METRICS", self.expose_metrics), ("SPOTON_EXPOSE_DOCS", self.expose_docs)):
            if value not in EXPOSURES:
                raise ValueError(f"{name}={value!r}: use one of {', '.join(EXPOSURES)}")
        return self

    def open_store(self, retry: S3Retry = S3Retry()) -> ObjectStore:
        """The store of ``SPOTON_STORE``: a folder, or ``s3://bucket/prefix`` at ``SPOTON_S3_ENDPOINT``
        (its client retrying per ``retry``)."""
        if self.store_s3 is None:
            return LocalStore(self.store_root)
        bucket, prefix = parse_s3_uri(self.store_s3)
        client = s3_client(retry, endpoint_url=self.s3_endpoint, region_name=self.s3_region)
        return S3Store(client, bucket, prefix, cache_dir=self.store_root)

    def open_lake(self, retry: S3Retry = S3Retry()) -> ObjectStore:
        """The lake's store: the folder ``lake``, or the S3 location ``lake_uri`` (same endpoint and keys
        as the store's)."""
        if self.lake_uri is None:
            return LocalStore(self.lake)
        bucket, prefix = parse_s3_uri(self.lake_uri)
        client = s3_client(retry, endpoint_url=self.s3_endpoint, region_name=self.s3_region)
        return S3Store(client, bucket, prefix, cache_dir=self.store_root / "lake-cache")

    def source_allow_list(self) -> SourceAllowList:
        """What session sources may open: files under the media roots (default: the store and the
        project's ``data/``), streams on ``source_hosts`` (default: any host)."""
        local = (self.store_root,) if self.store_s3 is None else ()
        roots = self.media_roots if self.media_roots is not None else (*local, REPO_ROOT / "data")
        try:
            return SourceAllowList(media_roots=tuple(roots), hosts=self.source_hosts)
        except ValueError as exc:
            raise ValueError(f"SPOTON_SOURCE_HOSTS: {exc} (use host names or CIDR networks, "
                             "e.g. 'cam1.local,10.0.0.0/8')") from None
