"""Tick and status fan-out: sessions publish once, every connected WebSocket client gets a copy.

Each client owns a bounded queue: when it is full the oldest tick is dropped (and counted), so a
slow client loses old ticks and never holds up the processing thread or the other clients.
Replies to the client's own commands go to a separate small queue that is never dropped.

Without Redis, delivery is in-process. With ``REDIS_URL`` every message is also published on
``{prefix}:ticks:{session_id}``, and each API instance relays what other instances published to
its own clients; session status is mirrored under ``{prefix}:status:{session_id}`` (with a TTL,
so a crashed instance's sessions disappear) and commands for a session owned elsewhere travel on
``{prefix}:commands:{session_id}``.

Redis may go away and come back: the listener then re-subscribes with exponential backoff
(:data:`RECONNECT_MIN_S` doubling to :data:`RECONNECT_MAX_S`). Meanwhile local delivery goes on,
messages for Redis are dropped (ticks are only worth their moment; status is re-published every
second), the registry answers from local state (``down_reason`` says why), and the log gets one
warning per outage and one line when it ends. Every wait in :meth:`Fanout.stop` is bounded: the
relay tasks end on a flag they poll, since redis-py can swallow a task's cancellation.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

STATUS_TTL_S = 10
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.2, 5.0
REDIS_TIMEOUT_S = 2.0  # connect and command timeout: a call on a dead server fails, never hangs
POLL_S = 1.0  # the listener's longest wait for a message: how soon it notices a stop or an outage
STOP_TIMEOUT_S = 3.0  # the relay tasks end within POLL_S or REDIS_TIMEOUT_S of the stop flag
_FINAL_STATES = ("stopped", "failed")


@dataclass(frozen=True)
class Message:
    """A serialized message for one session's clients; ``final`` closes their sockets after it.

    Serialised once: every client's queue holds this same ``text``. ``published``: when a session of
    this instance published it (monotonic; None when relayed from another instance).
    """

    session_id: str
    kind: str  # "tick" | "status"
    text: str
    final: bool = False
    published: float | None = field(default=None, compare=False)

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
        self._published: deque[float | None] = deque(maxlen=queue_size)  # beside ``ticks``
        self.sent_published: float | None = None  # ``published`` of the tick ``next`` returned last
        self.replies: deque[str] = deque(maxlen=64)
        self.dropped = 0
        self.closed = False
        self._ready = asyncio.Event()

    def push(self, message: Message) -> None:
        if self.closed:
            return
        if message.kind == "tick" and len(self.ticks) == self.ticks.maxlen:
            self.dropped += 1
        if message.kind == "tick":
            self.ticks.append(message.text)
            self._published.append(message.published)
        else:
            self.replies.append(message.text)
        if message.final:
            self.closed = True
        self._ready.set()

    def reply(self, payload: dict) -> None:
        self.replies.append(json.dumps(payload))
        self._ready.set()

    async def next(self) -> str | None:
        """The next text to send (replies and status first), or None once closed and drained."""
        while True:
            self.sent_published = None
            if self.replies:
                return self.replies.popleft()
            if self.ticks:
                self.sent_published = self._published.popleft()
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


async def _close_within(connection, timeout_s: float) -> None:
    """``await connection.aclose()`` for ``timeout_s`` at most; a failure to close is only logged."""
    closing = asyncio.create_task(connection.aclose())
    if not (await asyncio.wait({closing}, timeout=timeout_s))[0]:
        log.warning("closing %s took over %.0f s: left to the exit", type(connection).__name__, timeout_s)
    elif closing.exception() is not None:
        log.warning("closing %s failed: %s", type(connection).__name__, closing.exception())


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
        self.down_reason: str | None = None  # why Redis is unreachable; None while it works
        self._down_since = 0.0
        self._stopping = False
        self._outbox: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self.on_remote_command: Callable[[str, dict], Awaitable[None]] | None = None

    # --- lifecycle (on the event loop) ---------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if not self.redis_url:
            return
        # one immediate retry (a pooled connection may predate a Redis restart); backoff is ours
        self.redis = aioredis.from_url(self.redis_url, decode_responses=True, retry=Retry(NoBackoff(), 1),
                                       socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S)
        await self.redis.ping()  # fail at startup, with the URL, rather than on the first tick
        self._outbox = asyncio.Queue(maxsize=10_000)
        self._tasks = [asyncio.create_task(self._publisher()), asyncio.create_task(self._listener())]

    async def stop(self) -> None:
        """End the relay tasks and close Redis, each wait bounded by :data:`STOP_TIMEOUT_S`."""
        self._stopping = True
        if self._outbox is not None:
            self._drain_outbox()
            self._outbox.put_nowait(None)  # wakes the publisher
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            for task in pending:
                log.warning("fan-out task %s did not end within %.0f s: cancelled", task.get_name(), STOP_TIMEOUT_S)
                task.cancel()
        if self.redis is not None:
            await _close_within(self.redis, STOP_TIMEOUT_S)

    # --- publishing (any thread) ---------------------------------------------------------
    def publish(self, message: Message, status: dict | None = None) -> None:
        """Deliver to local clients and relay through Redis; never blocks the caller."""
        if self.loop is None or self.loop.is_closed():
            return
        if message.published is None:
            message = replace(message, published=time.monotonic())
        self.loop.call_soon_threadsafe(self._publish_on_loop, message, status)

    def _publish_on_loop(self, message: Message, status: dict | None) -> None:
        self.hub.deliver(message)
        if self._outbox is not None and self.down_reason is None and not self._stopping:
            try:
                self._outbox.put_nowait((message, status))
            except asyncio.QueueFull:
                log.warning("Redis outbox full: dropping a %s of %s", message.kind, message.session_id)

    def _drain_outbox(self) -> None:
        while not self._outbox.empty():
            self._outbox.get_nowait()

    async def _publisher(self) -> None:
        while not self._stopping:
            item = await self._outbox.get()
            if item is None or self.down_reason is not None:
                continue
            message, status = item
            try:
                await self.redis.publish(f"{self.prefix}:ticks:{message.session_id}",
                                         message.encode(self.instance_id))
                if status is not None:
                    key = f"{self.prefix}:status:{message.session_id}"
                    if message.final:
                        await self.redis.delete(key)
                    else:
                        await self.redis.set(key, json.dumps(status), ex=STATUS_TTL_S)
            except (RedisError, OSError) as exc:  # local clients still get everything
                self._mark_down(exc)

    async def _listener(self) -> None:
        """Subscribe, relay, and after any Redis error subscribe again (backoff) until stopped."""
        delay = RECONNECT_MIN_S
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(f"{self.prefix}:ticks:*", f"{self.prefix}:commands:*")
                self._mark_up()
                delay = RECONNECT_MIN_S
                while not self._stopping and self.down_reason is None:  # another call saw an outage: check
                    item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_S)
                    if item is not None and item.get("type") == "pmessage":
                        await self._relay(item)
            except (RedisError, OSError) as exc:
                self._mark_down(exc)
            finally:
                await _close_within(pubsub, REDIS_TIMEOUT_S)
            if not self._stopping and self.down_reason is not None:
                await asyncio.sleep(delay)
                delay = min(2 * delay, RECONNECT_MAX_S)

    async def _relay(self, item: dict) -> None:
        commands = f"{self.prefix}:commands:"
        try:
            if item["channel"].startswith(commands):
                if self.on_remote_command is not None:
                    await self.on_remote_command(item["channel"][len(commands):], json.loads(item["data"]))
                return
            instance_id, message = Message.decode(item["data"])
            if instance_id != self.instance_id:
                self.hub.deliver(message)
        except Exception:  # one bad message must not end the relay
            log.exception("bad fan-out message on %s", item.get("channel"))

    # --- Redis health ----------------------------------------------------------------------
    def _where(self) -> str:
        """Redis host:port for log lines and reasons (never the URL: it may hold a password)."""
        kwargs = self.redis.connection_pool.connection_kwargs
        return kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"

    def _mark_down(self, exc: BaseException) -> None:
        if self.down_reason is not None or self._stopping:
            return
        self.down_reason = (f"Redis at {self._where()} is unreachable ({type(exc).__name__}: {exc}): "
                            "sessions of other instances are unknown until it is back")
        self._down_since = time.monotonic()
        self._drain_outbox()
        log.warning("%s; local sessions keep serving their clients; reconnecting with backoff up to %.0f s",
                    self.down_reason, RECONNECT_MAX_S)

    def _mark_up(self) -> None:
        if self.down_reason is None:
            return
        self.down_reason = None
        log.info("Redis at %s is back after %.1f s: patterns re-subscribed, cross-instance relay resumed",
                    self._where(), time.monotonic() - self._down_since)

    # --- the cross-instance registry (from local state while Redis is down) -------------------
    async def _registry_call(self, call: Callable[[], Awaitable], fallback):
        """``await call()``, or ``fallback`` without Redis or while it is unreachable."""
        if self.redis is None or self.down_reason is not None:
            return fallback
        try:
            return await call()
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            return fallback

    async def remote_status(self, session_id: str) -> dict | None:
        text = await self._registry_call(lambda: self.redis.get(f"{self.prefix}:status:{session_id}"), None)
        return json.loads(text) if text else None

    async def remote_statuses(self) -> list[dict]:
        async def read() -> list:
            keys = [key async for key in self.redis.scan_iter(match=f"{self.prefix}:status:*")]
            return await self.redis.mget(keys) if keys else []
        return [json.loads(t) for t in await self._registry_call(read, []) if t]

    async def send_remote_command(self, session_id: str, command: dict) -> bool:
        """Forward a command to the instance owning the session; False without Redis (or while it is down)."""
        async def send() -> bool:
            await self.redis.publish(f"{self.prefix}:commands:{session_id}", json.dumps(command))
            return True
        return await self._registry_call(send, False)
