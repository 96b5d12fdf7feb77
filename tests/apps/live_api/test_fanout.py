"""Per-client bounded queues: a slow client loses its oldest ticks, the others lose nothing."""
from __future__ import annotations

import asyncio

from apps.live_api.fanout import Hub, Message, status_message


def test_slow_client_drops_old_ticks_fast_client_gets_all():
    async def run():
        hub = Hub(queue_size=4)
        fast, slow = hub.register("s-1"), hub.register("s-1")
        other = hub.register("s-2")
        received = []
        for seq in range(50):
            hub.deliver(Message("s-1", "tick", f"tick {seq}"))
            received.append(await fast.next())  # the fast client keeps up
        assert received == [f"tick {seq}" for seq in range(50)] and fast.dropped == 0
        assert list(slow.ticks) == [f"tick {seq}" for seq in range(46, 50)] and slow.dropped == 46
        assert not other.ticks  # another session's client sees nothing of s-1
        slow.reply({"type": "ack", "command": "pause"})
        assert await slow.next() == '{"type": "ack", "command": "pause"}'  # replies jump the queue
        hub.deliver(status_message({"session_id": "s-1", "state": "stopped"}))
        drained = [await slow.next() for _ in range(5)]
        assert drained[0].startswith('{"session_id"') and await slow.next() is None  # closed after final status
        hub.unregister(slow)
        hub.unregister(fast)
        assert hub.client_count == 1
    asyncio.run(run())


def test_redis_envelope_round_trip():
    message = Message("s-1", "tick", '{"a": "x|y"}', final=False)
    assert Message.decode(message.encode("inst1")) == ("inst1", message)
