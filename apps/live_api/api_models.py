"""Response models of the environment routes (the error body is ``errors.ErrorBody``)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Environment(BaseModel):
    name: str
    fps: float
    cameras: list[str]
    segments: int = Field(description="sub-videos per camera")


class Environments(BaseModel):
    environments: list[Environment]


class FrameSize(BaseModel):
    w: int
    h: int


class StoreSource(BaseModel):
    kind: Literal["store"]
    uri: str = Field(description="a store key, usable as a session camera's source")


class Camera(BaseModel):
    name: str
    size: FrameSize
    calibrated: bool = Field(description="has a ground-plane calibration (ticks carry map positions)")
    sub_videos: list[str] = Field(description="store keys")
    media_urls: list[str] = Field(description="the same videos through GET /api/v1/media (HTTP Range)")
    default_source: StoreSource | None


class Cameras(BaseModel):
    environment: str
    cameras: list[Camera]
