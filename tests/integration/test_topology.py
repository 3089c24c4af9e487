"""The worker declares its queues idempotently, and copes with ones an older version left."""

from __future__ import annotations

import asyncio

import aiormq.exceptions
import pytest

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.receiver import Receiver, status
from tests.support.settings import TEST_DELAYS, make_settings
from worker.app import Worker
from worker.broker import topology as t
from worker.errors import Fatal


async def test_an_empty_wait_queue_of_an_older_version_is_replaced(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    old = t.wait_queue(TEST_DELAYS[0])
    await platform.channel.declare_queue(old, durable=True, arguments={"x-queue-type": "classic"})
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    receiver.on("/hook", lambda _r, n: status(500 if n == 1 else 204)(_r, n))
    await start_worker(quick_retries=0)
    await platform.publish(event(1, "joined"))
    got = await receiver.wait_for(2)  # the retry went through the replaced wait queue
    assert [r.attempt for r in got] == [1, 2]


async def test_a_queue_declared_otherwise_that_holds_messages_stops_the_worker(
    db: Conn, platform: Platform
) -> None:
    await platform.channel.declare_queue(
        t.DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
    )
    worker = Worker(make_settings())
    with pytest.raises(Fatal, match=f"queue {t.DEAD_QUEUE} exists with other arguments"):
        await asyncio.wait_for(worker.run(), 30)


async def test_a_consumer_the_broker_cancels_is_restored(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    """Someone deletes the events queue under a running worker: the broker cancels its
    consumer; the worker declares the queue again and consumes from it."""
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    await start_worker()
    await platform.publish(event(1, "joined"))
    await receiver.wait_for(1)

    await platform.channel.queue_delete(t.EVENTS_QUEUE)
    await until(lambda: _consumers_of(platform, t.EVENTS_QUEUE, 1), within=20)
    await platform.publish(event(1, "joined"))
    got = await receiver.wait_for(2)
    assert len(got) == 2


async def _consumers_of(platform: Platform, name: str, count: int) -> bool:
    # A channel of its own: asking for a queue that is not there (yet) closes the channel.
    channel = await platform.channel.get_underlay_channel()
    probe = await channel.connection.channel()
    try:
        ok = await probe.queue_declare(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not probe.is_closed:
            await probe.close()
    return ok.consumer_count == count
