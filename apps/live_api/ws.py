"""WebSocket ``/ws/sessions/{id}``: ticks and status out, commands in.

Checked before the upgrade: the token (viewer to watch; 401/403), a browser's ``Origin`` (the
API's own, i.e. the overlay page, or one on the CORS allow-list when one is configured; 403; no
Origin header means a non-browser client) and the connection caps per session and per instance (429). Commands need operator and are
rate-limited per token, across all of its connections (token bucket). A malformed, binary,
too large, deeply nested, unknown, forbidden or too-frequent command, or a ``set_target_id`` for
an id the session never handed out, gets an ``{"type": "error", ...}`` reply and the connection
stays open. The socket sends from one task (the client's outbox) and reads in another, so a
client that reads slowly only fills its own bounded queue.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from apps.live_api.auth import Principal, Role, authenticate_websocket, websocket_token
from apps.live_api.fanout import Client
from apps.live_api.sessions import CommandError, parse_command

router = APIRouter()
MAX_TRACKED_TOKENS = 4096  # command buckets kept (least recently used dropped first)


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


def _token_bucket(app, token: str | None) -> TokenBucket:
    """The command bucket of one token, shared by all of its connections on this instance."""
    buckets: OrderedDict[str, TokenBucket] | None = getattr(app.state, "command_buckets", None)
    if buckets is None:  # one event loop: no race between this check and the assignment
        buckets = app.state.command_buckets = OrderedDict()
    key = hashlib.sha256((token or "").encode()).hexdigest()
    bucket = buckets.get(key)
    if bucket is None:
        rate = app.state.settings.commands_per_second
        bucket = buckets[key] = TokenBucket(rate, 2 * rate)
        while len(buckets) > MAX_TRACKED_TOKENS:
            buckets.popitem(last=False)
    buckets.move_to_end(key)
    return bucket


def _refusal(websocket: WebSocket, session_id: str) -> JSONResponse | None:
    """The HTTP answer to an upgrade from a foreign browser origin or over a connection cap."""
    settings = websocket.app.state.settings
    origin = websocket.headers.get("origin")
    allowed = settings.cors_origins
    same_origin = origin is not None and urlsplit(origin).netloc == websocket.headers.get("host")
    if origin is not None and allowed and not same_origin and origin not in allowed and "*" not in allowed:
        return JSONResponse({"detail": f"origin {origin!r} is not allowed: add it to SPOTON_CORS_ORIGINS"},
                            status_code=403)
    hub = websocket.app.state.hub
    if hub.client_count >= settings.ws_max_clients:
        return JSONResponse({"detail": f"this instance serves its maximum of {settings.ws_max_clients} "
                                       "WebSocket connections (SPOTON_WS_MAX_CLIENTS): try again later"},
                            status_code=429)
    if len(hub.clients.get(session_id, ())) >= settings.ws_max_clients_per_session:
        return JSONResponse({"detail": f"session {session_id} has its maximum of "
                                       f"{settings.ws_max_clients_per_session} WebSocket connections "
                                       "(SPOTON_WS_MAX_CLIENTS_PER_SESSION): close one or try later"},
                            status_code=429)
    return None


def _command_text(message: dict, max_bytes: int) -> str:
    """The text of a received frame, or CommandError saying why it is not a command."""
    text = message.get("text")
    if text is None:
        raise CommandError("binary frames are not commands: send a JSON text frame such as "
                           '{"type": "pause"}')
    size = len(text.encode())
    if size > max_bytes:
        raise CommandError(f"command of {size} bytes is over the {max_bytes}-byte limit: "
                           "send a small JSON object such as {\"type\": \"pause\"}")
    return text


async def _sender(websocket: WebSocket, client: Client, metrics) -> None:
    reported = 0
    while (text := await client.next()) is not None:
        published = client.sent_published
        await websocket.send_text(text)
        if published is not None:
            metrics.tick_send_delay.observe(time.monotonic() - published)
        if client.dropped > reported:
            metrics.client_ticks_dropped.inc(client.dropped - reported)
            reported = client.dropped
    await websocket.close(1000)


async def _handle_command(websocket: WebSocket, session_id: str, principal: Principal, client: Client,
                          bucket: TokenBucket, message: dict) -> None:
    app = websocket.app
    metrics = app.state.metrics

    def error(code: int, detail: str, command=None) -> None:
        metrics.commands.labels("rejected").inc()
        client.reply({"type": "error", "code": code, "detail": detail, "command": command})

    if not bucket.take():
        return error(429, f"too many commands: at most {bucket.rate:g} per second per token")
    try:
        text = _command_text(message, app.state.settings.ws_max_message_bytes)
    except CommandError as exc:
        return error(400, str(exc))
    try:
        data = json.loads(text)
    except ValueError:
        return error(400, "not JSON: send a JSON object such as {\"type\": \"pause\"}")
    except RecursionError:
        return error(400, "JSON nested too deeply: a command is a flat object such as {\"type\": \"pause\"}")
    try:
        command = parse_command(data)
    except CommandError as exc:
        return error(400, str(exc), data.get("type") if isinstance(data, dict) else None)
    if principal.role < Role.operator:
        return error(403, f"role {principal.role.name!r} may only watch: commands need 'operator' or higher",
                     command.type)
    session = app.state.sessions.get(session_id)
    if session is not None:
        try:
            session.apply(command)
        except CommandError as exc:  # e.g. a target id the session never handed out
            return error(exc.code, str(exc), command.type)
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
    status = await app.state.sessions.find_status(session_id)
    if status is None:
        await websocket.send_denial_response(JSONResponse(
            {"detail": f"no session {session_id}: create one with POST /api/v1/sessions"}, status_code=404))
        return
    refusal = _refusal(websocket, session_id)
    if refusal is not None:
        await websocket.send_denial_response(refusal)
        return
    client = app.state.hub.register(session_id)  # counted from here, before the await below
    try:
        await websocket.accept(subprotocol=subprotocol)
    except BaseException:
        app.state.hub.unregister(client)
        raise
    client.reply(status)
    bucket = _token_bucket(app, websocket_token(websocket)[0])
    sender = asyncio.create_task(_sender(websocket, client, app.state.metrics))
    try:
        while True:
            receive = asyncio.create_task(websocket.receive())
            done, _ = await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:  # session ended (socket closed by the sender) or the send failed
                receive.cancel()
                break
            if receive.result()["type"] == "websocket.disconnect":
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
