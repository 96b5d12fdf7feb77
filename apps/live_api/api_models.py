"""Response models of the environment and session routes (the error body is ``errors.ErrorBody``)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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


class SourceShown(BaseModel):
    kind: str
    uri: str = Field(description="the source URI, its password replaced by ***")


class CameraStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    state: str
    error: str | None
    source: SourceShown
    frames_read: int
    dropped_frames: int
    source_fps: float
    frame_index: int | None
    last_frame_unix_ms: int | None


class Latency(BaseModel):
    p50: float | None = Field(description="frame-to-tick latency, milliseconds: a frame's availability to the "
                                          "hand-over of the tick that describes it")
    p95: float | None


class SessionStatus(BaseModel):
    """A session's status (also sent over its WebSocket as ``{"type": "status", ...}``)."""

    model_config = ConfigDict(extra="allow")  # later fields (follow, media) are additive

    type: Literal["status"]
    session_id: str
    environment: str
    state: Literal["starting", "running", "reconnecting", "stopped", "failed"]
    reason: str | None
    paused: bool
    mode: str
    selected_target_id: int | None
    tick_rate_hz: float
    fps: float
    latency_ms: Latency
    dropped_frames: int
    superseded_frames: int = Field(0, description="processed frames a newer frame of their camera replaced before "
                                                  "a tick was due (no tick describes them; not in latency_ms)")
    ticks_published: int
    global_ids: int
    reacquired_by_appearance: int = Field(0, description="live global ids taken up again by appearance and "
                                                         "motion after an occlusion (or from another instance)")
    cameras: dict[str, CameraStatus]
    created_unix_ms: int
    instance: str
    ws_path: str


class SessionCreated(BaseModel):
    session_id: str
    ws_path: str
    ws_url: str = Field(description="the WebSocket to watch ticks and send commands on")
    status: SessionStatus


class Sessions(BaseModel):
    sessions: list[SessionStatus]
    partial: bool = Field(description="true while Redis is down: only this instance's sessions are listed")
    detail: str | None = Field(None, description="why the list is partial")


class SessionStopped(BaseModel):
    session_id: str
    state: Literal["stopped", "failed", "stopping"] = Field(
        description="its final state, or 'stopping' when another instance owns it")


class Upload(BaseModel):
    """An upload job (``GET /api/v1/videos/{id}``): the stored record plus media URLs."""

    model_config = ConfigDict(extra="allow")

    id: str
    state: Literal["queued", "processing", "done", "failed"]
    filename: str
    size_bytes: int
    video_key: str
    created_unix: float
    frame_interval_s: float
    video: dict = Field(description="codec, width, height, fps, frame_count, duration_s (once probed)")
    thumbnail_key: str | None
    error: str | None = Field(description="why the job failed (no server path)")
    updated_unix: float
    frame_count_extracted: int
    video_url: str | None = Field(description="the video through GET /api/v1/media; null once failed")
    thumbnail_url: str | None
    frames_url: str


class Uploads(BaseModel):
    videos: list[Upload]


class ExtractedFrameOut(BaseModel):
    index: int = Field(description="source frame index")
    ts: float = Field(description="seconds from the video start")
    key: str
    url: str


class UploadFrames(BaseModel):
    id: str
    frame_interval_s: float
    frames: list[ExtractedFrameOut]
