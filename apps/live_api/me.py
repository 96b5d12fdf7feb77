"""``GET /api/v1/me``: the caller's role, so the web pages can hide what the API would refuse anyway."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from apps.live_api.auth import Viewer
from apps.live_api.errors import error_responses

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Me(BaseModel):
    subject: str = Field(description="who the token names (an API key shows only its first characters)")
    role: Literal["viewer", "operator", "admin"]


@router.get("/me", response_model=Me, responses=error_responses(401))
def me(principal: Viewer) -> dict:
    return {"subject": principal.subject, "role": principal.role.name}
