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


def test_ticks_published_from_a_thread_reach_200_clients_once_serialised_past_stuck_ones():
    """The session thread publishes while 5 clients are stuck in a send: the 200 readers get every tick
    in order (the thread waits for them, in lock-step, as a tick period would), each stuck client holds
    at most its queue (oldest dropped), and every client is handed the one encoded text (no
    per-client serialisation)."""
    import threading

    from apps.live_api.fanout import Fanout

    async def run():
        hub = Hub(queue_size=4)
        fanout = Fanout(hub, "inst1")
        await fanout.start()
        readers = [hub.register("s-1") for _ in range(200)]
        stuck = [hub.register("s-1") for _ in range(5)]
        got: dict[int, list[str]] = {i: [] for i in range(len(readers))}
        published: list[str] = []
        everyone_has = [threading.Event() for _ in range(50)]  # tick k reached all 200 readers
        counts = [0] * 50

        async def read(i, client):
            while len(got[i]) < 50:
                got[i].append(await client.next())
                counts[len(got[i]) - 1] += 1
                if counts[len(got[i]) - 1] == len(readers):
                    everyone_has[len(got[i]) - 1].set()

        async def stuck_in_send(client):
            await client.next()  # takes one tick, then its socket never drains
            await asyncio.Event().wait()

        tasks = [asyncio.create_task(read(i, c)) for i, c in enumerate(readers)]
        blocked = [asyncio.create_task(stuck_in_send(c)) for c in stuck]

        def session_thread():
            for seq in range(50):
                text = f'{{"type":"tick","seq":{seq}}}'
                published.append(text)
                fanout.publish(Message("s-1", "tick", text))
                assert everyone_has[seq].wait(30), f"tick {seq} did not reach every reader"

        publisher = threading.Thread(target=session_thread)
        publisher.start()
        await asyncio.get_running_loop().run_in_executor(None, publisher.join)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        for texts in got.values():
            assert texts == published
            assert all(a is b for a, b in zip(texts, published))  # the same object: serialised once
        assert readers[0].sent_published is not None  # stamped at publish, for the send-delay metric
        for client in stuck:
            assert len(client.ticks) == 4 and client.dropped == 50 - 1 - 4
            assert list(client.ticks) == published[-4:]
        for task in blocked:
            task.cancel()
        await fanout.stop()
    asyncio.run(run())
