"""WebSocket ``/ws/sessions/{id}``: ticks and status out, commands in.

Authenticated before the upgrade (viewer to watch); commands need operator and are
rate-limited per connection (token bucket). A malformed, unknown, forbidden or too-frequent
command gets an ``{"type": "error", ...}`` reply and the connection stays open. The socket
sends from one task (the client's outbox) and reads in another, so a client that reads slowly
only fills its own bounded queue.
"""
from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from apps.live_api.auth import Principal, Role, authenticate_websocket
from apps.live_api.fanout import Client
from apps.live_api.sessions import CommandError, parse_command

router = APIRouter()


class TokenBucket:
    """``rate`` commands per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


async def _sender(websocket: WebSocket, client: Client, metrics) -> None:
    reported = 0
    while (text := await client.next()) is not None:
        await websocket.send_text(text)
        if client.dropped > reported:
            metrics.client_ticks_dropped.inc(client.dropped - reported)
            reported = client.dropped
    await websocket.close(1000)


async def _handle_command(websocket: WebSocket, session_id: str, principal: Principal, client: Client,
                          bucket: TokenBucket, text: str) -> None:
    app = websocket.app
    metrics = app.state.metrics

    def error(code: int, detail: str, command=None) -> None:
        metrics.commands.labels("rejected").inc()
        client.reply({"type": "error", "code": code, "detail": detail, "command": command})

    if not bucket.take():
        return error(429, f"too many commands: at most {bucket.rate:g} per second")
    try:
        data = json.loads(text)
    except ValueError:
        return error(400, "not JSON: send a JSON object such as {\"type\": \"pause\"}")
    try:
        command = parse_command(data)
    except CommandError as exc:
        return error(400, str(exc), data.get("type") if isinstance(data, dict) else None)
    if principal.role < Role.operator:
        return error(403, f"role {principal.role.name!r} may only watch: commands need 'operator' or higher",
                     command.type)
    session = app.state.sessions.get(session_id)
    if session is not None:
        session.apply(command)
    elif not await app.state.fanout.send_remote_command(session_id, data):
        return error(404, f"session {session_id} is not running any more", command.type)
    metrics.commands.labels("applied").inc()
    client.reply({"type": "ack", "command": command.type})


@router.websocket("/ws/sessions/{session_id}")
async def session_socket(websocket: WebSocket, session_id: str) -> None:
    auth = await authenticate_websocket(websocket, Role.viewer)
    if auth is None:
        return
    principal, subprotocol = auth
    app = websocket.app
    session = app.state.sessions.get(session_id)
    status = session.status() if session is not None else await app.state.fanout.remote_status(session_id)
    if status is None:
        await websocket.send_denial_response(JSONResponse(
            {"detail": f"no session {session_id}: create one with POST /api/v1/sessions"}, status_code=404))
        return
    await websocket.accept(subprotocol=subprotocol)
    settings = app.state.settings
    client = app.state.hub.register(session_id)
    client.reply(status)
    bucket = TokenBucket(settings.commands_per_second, 2 * settings.commands_per_second)
    sender = asyncio.create_task(_sender(websocket, client, app.state.metrics))
    try:
        while True:
            receive = asyncio.create_task(websocket.receive_text())
            done, _ = await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:  # session ended (socket closed by the sender) or the send failed
                receive.cancel()
                break
            await _handle_command(websocket, session_id, principal, client, bucket, receive.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        client.close()
        app.state.hub.unregister(client)
        if not sender.done():
            sender.cancel()
        try:
            await sender
        except (asyncio.CancelledError, Exception):
            pass
