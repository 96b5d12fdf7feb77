"""Live sessions over REST (``/api/v1/sessions``) and the tick schema their WebSocket follows.

The runtime is :mod:`apps.live_api.sessions`; these routes create, list, read and stop sessions.
With Redis a session may run on another instance: reads and stops reach it through the fan-out,
and while Redis is down a session not found here is 503 (it may exist elsewhere), not 404.
"""
from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, StrictFloat

from apps.live_api.api_models import SessionCreated, Sessions, SessionStatus, SessionStopped
from apps.live_api.auth import Admin, Viewer
from apps.live_api.deps import FanoutDep, SessionsDep, SettingsDep
from apps.live_api.errors import error_responses
from apps.live_api.fanout import Fanout
from spoton.live.sources import SourceError, SourceSpec
from spoton.live.tick import TICK_JSON_SCHEMA, TICK_SCHEMA_URL_PATH

API = "/api/v1"
router = APIRouter(tags=["live"])
tick_router = APIRouter(tags=["live"])  # its own, included before the environments (the OpenAPI order)


class SourceBody(BaseModel):
    kind: Literal["file", "store", "upload", "rtsp", "http", "webrtc"]
    uri: str


class SessionBody(BaseModel):
    environment: str = Field(description="an environment of GET /api/v1/environments")
    cameras: dict[str, SourceBody] | None = Field(
        None, description="per camera, its source; omitted: every camera on its first sub-video")
    tick_rate_hz: StrictFloat | None = Field(None, description="ticks per second at most (default SPOTON_TICK_RATE)")


@tick_router.get(TICK_SCHEMA_URL_PATH, response_model=dict)
def tick_schema() -> dict:
    """The JSON Schema every tick validates against (stable URL)."""
    return TICK_JSON_SCHEMA


@router.post(f"{API}/sessions", status_code=201, response_model=SessionCreated,
             responses=error_responses(400, 401, 403, 404, 422, 429, 502, 503))
async def create_session(body: SessionBody, request: Request, sessions: SessionsDep, settings: SettingsDep,
                         _: Admin) -> dict:
    try:
        sources = ({cam: SourceSpec(src.kind, src.uri) for cam, src in body.cameras.items()}
                   if body.cameras else None)
    except SourceError as exc:
        raise HTTPException(422, str(exc)) from None
    rate = body.tick_rate_hz if body.tick_rate_hz is not None else settings.default_tick_rate_hz
    session = await asyncio.get_running_loop().run_in_executor(
        None, sessions.create, body.environment, sources, rate)
    scheme = "wss" if request.url.scheme == "https" else "ws"
    path = f"/ws/sessions/{session.id}"
    return {"session_id": session.id, "ws_path": path, "ws_url": f"{scheme}://{request.url.netloc}{path}",
            "status": session.status()}


def _not_here(session_id: str, fanout: Fanout) -> HTTPException:
    """404, or 503 while Redis is down: the session may run on another instance."""
    if fanout.down_reason is not None:
        return HTTPException(503, f"session {session_id} is not on this instance and {fanout.down_reason}: "
                                  "retry later")
    return HTTPException(404, f"no session {session_id}: list them with GET {API}/sessions")


@router.get(f"{API}/sessions", response_model=Sessions, responses=error_responses(401, 403))
async def list_sessions(sessions: SessionsDep, fanout: FanoutDep, _: Viewer) -> dict:
    """This instance's sessions and, through Redis, the others'; ``partial`` while Redis is down."""
    local = [s.status() for s in list(sessions.sessions.values())]
    remote = [s for s in await fanout.remote_statuses() if s["session_id"] not in sessions.sessions]
    listing = {"sessions": local + remote, "partial": fanout.down_reason is not None}
    if listing["partial"]:
        listing["detail"] = f"only this instance's sessions: {fanout.down_reason}"
    return listing


@router.get(f"{API}/sessions/{{session_id}}", response_model=SessionStatus,
            responses=error_responses(401, 403, 404, 503))
async def get_session(session_id: str, sessions: SessionsDep, fanout: FanoutDep, _: Viewer) -> dict:
    status = await sessions.find_status(session_id)
    if status is None:
        raise _not_here(session_id, fanout)
    return status


@router.delete(f"{API}/sessions/{{session_id}}", response_model=SessionStopped,
               responses=error_responses(401, 403, 404, 503))
async def delete_session(session_id: str, sessions: SessionsDep, fanout: FanoutDep, _: Admin) -> dict:
    """Stop a session; ``state`` is its final one ("stopped" or "failed"), or "stopping" elsewhere."""
    state = await asyncio.get_running_loop().run_in_executor(None, sessions.delete, session_id)
    if state is not None:
        return {"session_id": session_id, "state": state}
    if await fanout.remote_status(session_id) is not None and \
            await fanout.send_remote_command(session_id, {"type": "__delete__"}):
        return {"session_id": session_id, "state": "stopping"}
    raise _not_here(session_id, fanout)
