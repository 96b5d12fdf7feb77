"""Tick and status fan-out: sessions publish once, every connected WebSocket client gets a copy.

Each client owns a bounded queue: when it is full the oldest tick is dropped (and counted), so a
slow client loses old ticks and never holds up the processing thread or the other clients.
Replies to the client's own commands go to a separate small queue that is never dropped.

Without Redis, delivery is in-process. With ``REDIS_URL`` every message is also published on
``{prefix}:ticks:{session_id}``, and each API instance relays what other instances published to
its own clients; session status is mirrored under ``{prefix}:status:{session_id}`` (with a TTL,
so a crashed instance's sessions disappear) and commands for a session owned elsewhere travel on
``{prefix}:commands:{session_id}``.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

STATUS_TTL_S = 10
_FINAL_STATES = ("stopped", "failed")


@dataclass(frozen=True)
class Message:
    """A serialized message for one session's clients; ``final`` closes their sockets after it."""

    session_id: str
    kind: str  # "tick" | "status"
    text: str
    final: bool = False

    def encode(self, instance_id: str) -> str:
        return f"{instance_id}|{self.kind}|{int(self.final)}|{self.session_id}|{self.text}"

    @classmethod
    def decode(cls, data: str) -> tuple[str, "Message"]:
        instance_id, kind, final, session_id, text = data.split("|", 4)
        return instance_id, cls(session_id, kind, text, final == "1")


class Client:
    """One WebSocket connection's outbox: ticks (bounded, oldest dropped) and replies."""

    def __init__(self, session_id: str, queue_size: int):
        self.session_id = session_id
        self.ticks: deque[str] = deque(maxlen=queue_size)
        self.replies: deque[str] = deque(maxlen=64)
        self.dropped = 0
        self.closed = False
        self._ready = asyncio.Event()

    def push(self, message: Message) -> None:
        if self.closed:
            return
        if message.kind == "tick" and len(self.ticks) == self.ticks.maxlen:
            self.dropped += 1
        (self.ticks if message.kind == "tick" else self.replies).append(message.text)
        if message.final:
            self.closed = True
        self._ready.set()

    def reply(self, payload: dict) -> None:
        self.replies.append(json.dumps(payload))
        self._ready.set()

    async def next(self) -> str | None:
        """The next text to send (replies and status first), or None once closed and drained."""
        while True:
            if self.replies:
                return self.replies.popleft()
            if self.ticks:
                return self.ticks.popleft()
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class Hub:
    """Per-process registry of clients by session, fed on the event loop."""

    def __init__(self, queue_size: int):
        self.queue_size = queue_size
        self.clients: dict[str, set[Client]] = {}

    @property
    def client_count(self) -> int:
        return sum(len(c) for c in self.clients.values())

    def register(self, session_id: str) -> Client:
        client = Client(session_id, self.queue_size)
        self.clients.setdefault(session_id, set()).add(client)
        return client

    def unregister(self, client: Client) -> None:
        clients = self.clients.get(client.session_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.clients[client.session_id]

    def deliver(self, message: Message) -> None:
        for client in list(self.clients.get(message.session_id, ())):
            client.push(message)


def status_message(status: dict) -> Message:
    return Message(status["session_id"], "status", json.dumps(status),
                   final=status.get("state") in _FINAL_STATES)


class Fanout:
    """Thread-safe ``publish`` from session threads; local delivery plus optional Redis relay."""

    def __init__(self, hub: Hub, instance_id: str, redis_url: str | None = None, prefix: str = "spoton"):
        self.hub = hub
        self.instance_id = instance_id
        self.redis_url = redis_url
        self.prefix = prefix
        self.loop: asyncio.AbstractEventLoop | None = None
        self.redis = None
        self._outbox: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self.on_remote_command: Callable[[str, dict], Awaitable[None]] | None = None

    # --- lifecycle (on the event loop) ---------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if not self.redis_url:
            return
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(self.redis_url, decode_responses=True)
        await self.redis.ping()  # fail at startup, with the URL, rather than on the first tick
        self._outbox = asyncio.Queue(maxsize=10_000)
        pubsub = self.redis.pubsub()
        await pubsub.psubscribe(f"{self.prefix}:ticks:*", f"{self.prefix}:commands:*")
        self._tasks = [asyncio.create_task(self._publisher()), asyncio.create_task(self._listener(pubsub))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self.redis is not None:
            await self.redis.aclose()

    # --- publishing (any thread) ---------------------------------------------------------
    def publish(self, message: Message, status: dict | None = None) -> None:
        """Deliver to local clients and relay through Redis; never blocks the caller."""
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._publish_on_loop, message, status)

    def _publish_on_loop(self, message: Message, status: dict | None) -> None:
        self.hub.deliver(message)
        if self._outbox is not None:
            try:
                self._outbox.put_nowait((message, status))
            except asyncio.QueueFull:
                log.warning("Redis outbox full: dropping a %s of %s", message.kind, message.session_id)

    async def _publisher(self) -> None:
        while True:
            message, status = await self._outbox.get()
            try:
                await self.redis.publish(f"{self.prefix}:ticks:{message.session_id}",
                                         message.encode(self.instance_id))
                if status is not None:
                    key = f"{self.prefix}:status:{message.session_id}"
                    if message.final:
                        await self.redis.delete(key)
                    else:
                        await self.redis.set(key, json.dumps(status), ex=STATUS_TTL_S)
            except Exception:  # Redis down: local clients still get everything
                log.exception("Redis publish failed")

    async def _listener(self, pubsub) -> None:
        commands = f"{self.prefix}:commands:"
        async for item in pubsub.listen():
            if item.get("type") != "pmessage":
                continue
            try:
                if item["channel"].startswith(commands):
                    if self.on_remote_command is not None:
                        await self.on_remote_command(item["channel"][len(commands):], json.loads(item["data"]))
                    continue
                instance_id, message = Message.decode(item["data"])
                if instance_id != self.instance_id:
                    self.hub.deliver(message)
            except Exception:
                log.exception("bad fan-out message on %s", item.get("channel"))

    # --- the cross-instance registry -----------------------------------------------------
    async def remote_status(self, session_id: str) -> dict | None:
        if self.redis is None:
            return None
        text = await self.redis.get(f"{self.prefix}:status:{session_id}")
        return json.loads(text) if text else None

    async def remote_statuses(self) -> list[dict]:
        if self.redis is None:
            return []
        keys = [key async for key in self.redis.scan_iter(match=f"{self.prefix}:status:*")]
        texts = await self.redis.mget(keys) if keys else []
        return [json.loads(t) for t in texts if t]

    async def send_remote_command(self, session_id: str, command: dict) -> bool:
        """Forward a command to the instance owning the session; False without Redis."""
        if self.redis is None:
            return False
        await self.redis.publish(f"{self.prefix}:commands:{session_id}", json.dumps(command))
        return True
