"""What the routers reach on the app (``create_app`` builds it onto ``app.state``), as ``Annotated``
dependencies: a route takes ``sessions: SessionsDep`` instead of closing over the factory's locals."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from apps.live_api.fanout import Fanout
from apps.live_api.sessions import SessionManager
from apps.live_api.settings import Settings
from spoton.storage.store import ObjectStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_sessions(request: Request) -> SessionManager:
    return request.app.state.sessions


def get_fanout(request: Request) -> Fanout:
    return request.app.state.fanout


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
SessionsDep = Annotated[SessionManager, Depends(get_sessions)]
FanoutDep = Annotated[Fanout, Depends(get_fanout)]
