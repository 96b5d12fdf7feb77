"""What ``create_app`` builds around the sessions and what it does once started.

Startup runs in a background thread (:func:`warm_up`): build the sample environment into the store
when it is missing, load the detector and warm it up on a real frame (and the appearance embedder
when live ids use appearance); ``/readyz`` and ``POST /sessions`` answer 503 until that is done.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from fastapi import FastAPI

from apps.live_api.health import LiveMetrics, Readiness
from apps.live_api.observe import TimedDetector
from apps.live_api.sessions import SessionError
from apps.live_api.settings import Settings
from spoton.live.identity import LIVE_CROP_SIZE, AppearanceSampler, RedisIdentityShare
from spoton.site import storage as site_storage
from spoton.storage.store import LocalStore, ObjectStore, S3Retry

log = logging.getLogger(__name__)


def _build_sample(store: ObjectStore, name: str, max_source_frames: int | None, cache_dir: Path) -> None:
    """Build the sample environment into ``store``; an S3 store gets it through a temporary folder."""
    from spoton.artifacts import fetch_sample_video
    from spoton.sample.builder import build_sample_environment

    if isinstance(store, LocalStore):
        build_sample_environment(fetch_sample_video(cache_dir), store.root, name, max_source_frames=max_source_frames)
        return
    with tempfile.TemporaryDirectory(prefix="spoton-sample-") as work:
        root = Path(work)
        build_sample_environment(fetch_sample_video(cache_dir), root, name, max_source_frames=max_source_frames)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                store.upload_file(path, path.relative_to(root).as_posix())


PROBE_RETRY = S3Retry(max_attempts=1, connect_timeout_s=2.0, read_timeout_s=2.0)  # a probe never waits out retries


def storage_checks(settings: Settings) -> dict[str, Callable[[], tuple[bool, str]]]:
    """The storage part of ``/readyz``: the store (uploads, media, environments) and the lake (live
    history, history REST), each asked once with short timeouts; the answers never name a path."""
    return {"store": reachability(settings.open_store(PROBE_RETRY), "store"),
            "lake": reachability(settings.open_lake(PROBE_RETRY), "lake")}


def reachability(store: ObjectStore, what: str) -> Callable[[], tuple[bool, str]]:
    """Whether ``store`` can be used now: a writable folder, or a bucket that answers."""
    if isinstance(store, LocalStore):
        def check() -> tuple[bool, str]:
            ok = store.root.is_dir() and os.access(store.root, os.R_OK | os.W_OK)
            return ok, f"{what} {'reachable' if ok else 'missing or not writable'}"
        return check

    def check_bucket() -> tuple[bool, str]:
        try:
            store.client.head_bucket(Bucket=store.bucket)
            return True, f"{what} reachable (S3)"
        except Exception as exc:  # any client or connection error: not ready, said without secrets
            return False, f"{what} (S3) not reachable: {type(exc).__name__}"
    return check_bucket


def shared_detector(app: FastAPI, metrics: LiveMetrics) -> Callable[[], TimedDetector]:
    """The sessions' detector factory: the warmed-up detector, timed; 503 until :func:`warm_up` loaded it."""
    def detector() -> TimedDetector:
        if app.state.detector is None:
            raise SessionError(503, "not ready: the detector is still loading (see /readyz)")
        return TimedDetector(app.state.detector, metrics)
    return detector


def appearance_sampler(app: FastAPI, every_frames: int) -> Callable[[], AppearanceSampler | None]:
    """A sampler per session on the shared embedder; None while (or if) there is no embedder."""
    def sampler() -> AppearanceSampler | None:
        embedder = app.state.embedder
        return None if embedder is None else AppearanceSampler(embedder, every_frames)
    return sampler


def identity_share(settings: Settings) -> Callable[[str], RedisIdentityShare] | None:
    """With Redis: live global ids and appearances shared by the instances, per environment."""
    if not settings.redis_url:
        return None
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def share(environment: str) -> RedisIdentityShare:
        return RedisIdentityShare(client, environment, settings.redis_prefix)
    return share


def warm_up(app: FastAPI) -> None:
    """Build what is missing, load and exercise the detector, then mark the app ready."""
    settings: Settings = app.state.settings
    readiness: Readiness = app.state.readiness
    store: ObjectStore = app.state.store
    try:
        if settings.build_sample_environment:  # a startup convenience: sessions never import the sample
            from spoton.sample import ENV_NAME

            if ENV_NAME not in site_storage.list_environments(store):
                readiness.detail = f"building the sample environment {ENV_NAME!r} into the store"
                _build_sample(store, ENV_NAME, settings.sample_max_source_frames, settings.cache_dir)
        readiness.checks["environments"] = site_storage.list_environments(store)
        readiness.detail = "loading and warming up the detector"
        from spoton.video import iter_frames

        detector = settings.perception().build_detector()
        videos = [k for k in store.list_keys() if k.endswith(".mp4")]
        frame = (next(iter_frames(store.video_source(videos[0]))).image if videos
                 else np.zeros((480, 640, 3), np.uint8))
        for _ in range(2):
            detector.detect(frame)
        app.state.detector = detector
        readiness.checks["detector"] = f"nanodet warmed up on a {frame.shape[1]}x{frame.shape[0]} frame"
        if settings.appearance_every_frames > 0:
            readiness.detail = "loading the appearance embedder"
            try:
                from spoton.models.embedder import build_embedder

                perception = settings.perception()
                embedder = build_embedder(perception.embedder, perception.embedder_weights, crop_size=LIVE_CROP_SIZE,
                                          threads=perception.threads, device=perception.device,
                                          cache_dir=perception.cache_dir)
                embedder.embed(frame, np.array([[0, 0, 64, 128]], np.float32))
                app.state.embedder = embedder
                readiness.checks["appearance"] = f"a crop per track every {settings.appearance_every_frames} frames"
            except Exception as exc:  # live ids fall back to floor position only
                log.warning("appearance embedder unavailable (%s: %s): live global ids use position only",
                            type(exc).__name__, exc)
                readiness.checks["appearance"] = "unavailable: live global ids use floor position only"
        readiness.ready = True
        readiness.detail = "ready"
        log.info("live API ready (store %s)", store.uri)
    except Exception as exc:  # /readyz shows it; /healthz stays up so it can be read
        log.exception("live API startup failed")
        readiness.detail = f"startup failed: {type(exc).__name__}: {exc}"
