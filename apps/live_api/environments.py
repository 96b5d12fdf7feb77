"""``GET /api/v1/environments`` and ``.../{environment}/cameras``: what a session can be started on.

An environment's cameras list their sub-videos in the store (with the media URLs that serve them)
and the default source a session uses for a camera it is not given one for.
"""
from __future__ import annotations

from fastapi import APIRouter

from apps.live_api.api_models import Cameras, Environments
from apps.live_api.auth import Viewer
from apps.live_api.deps import SessionsDep, StoreDep
from apps.live_api.errors import error_responses
from apps.live_api.media import media_url
from spoton.environment import scan_sub_videos
from spoton.site import storage as site_storage

router = APIRouter(prefix="/api/v1/environments", tags=["live"])


@router.get("", response_model=Environments, responses=error_responses(401, 403))
def list_environments(store: StoreDep, sessions: SessionsDep, _: Viewer) -> dict:
    environments = []
    found = scan_sub_videos(store)
    for name in site_storage.list_environments(store):
        env = sessions.environment(name)
        environments.append({"name": name, "fps": env.fps, "cameras": list(env.camera_names),
                             "segments": len(found.get(name, {}))})
    return {"environments": environments}


@router.get("/{environment}/cameras", response_model=Cameras, responses=error_responses(401, 403, 404))
def list_cameras(environment: str, store: StoreDep, sessions: SessionsDep, _: Viewer) -> dict:
    env = sessions.environment(environment)
    cameras = []
    for camera in env.cameras:
        videos = [k for k in store.list_keys(f"{environment}/{camera.name}/") if k.endswith(".mp4")]
        cameras.append({"name": camera.name, "size": {"w": camera.resolution[0], "h": camera.resolution[1]},
                        "calibrated": camera.calibration is not None,
                        "sub_videos": videos, "media_urls": [media_url(k) for k in videos],
                        "default_source": {"kind": "store", "uri": videos[0]} if videos else None})
    return {"environment": environment, "cameras": cameras}
