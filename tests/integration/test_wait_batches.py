"""Deliveries put into a wait queue at the same moment share one message (a batch); out of it
each comes back as a delivery of its own, and each dies on its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, holds, seed_hook, seed_queue, seed_schema
from tests.support.proxy import Proxy
from tests.support.receiver import Receiver
from tests.support.settings import make_settings
from worker.broker import Broker
from worker.broker import topology as t
from worker.codec import BATCH2_TYPE, BATCH_TYPE, Delivery, pack, unpack

DELAY = 1.0  # long enough to look at the wait queue before its message expires


@pytest.fixture(params=[2, 1], ids=["format2", "format1"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    """A publisher of wait batches in each format: 2, and 1 as older versions (and a rolling
    upgrade's QUEUE_HOOKS_WAIT_FORMAT=1) write it. The worker reads both."""
    settings = make_settings()
    b = Broker(
        settings.amqp_url, settings.exchange, (DELAY,), prefetch=1, wait_format=request.param
    )
    await b.connect(attempts=3)
    try:
        yield b
    finally:
        await b.close()


def jobs(hook_id: int, count: int) -> list[Delivery]:
    made = []
    for n in range(count):
        event_id = str(uuid.uuid4())
        body = orjson.dumps({"type": "joined", "id": event_id, "hook_id": hook_id, "n": n})
        made.append(Delivery(hook_id, event_id, "joined", 1, body, attempts=n % 2))
    return made


async def put_together(broker: Broker, batch: list[Delivery]) -> None:
    """As the pipeline does when many deliveries are deferred in the same turn of the loop."""
    await asyncio.gather(
        *(broker.publish_wait(j.body, j.headers() | {t.H_DEFERRED: 1}, DELAY, DELAY) for j in batch)
    )


async def test_deliveries_waiting_together_share_a_message_and_come_back_each_on_its_own(
    db: Conn, platform: Platform, receiver: Receiver, broker: Broker, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    hook = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    await start_worker(retry_delays=(DELAY,))
    batch = jobs(hook, 5)
    await put_together(broker, batch)
    assert await platform.depth(t.wait_queue(DELAY)) == 1  # before it expires: one message
    got = await receiver.wait_for(5, within=15)
    assert sorted(r.body for r in got) == sorted(j.body for j in batch)  # byte for byte
    by_id = {r.webhook_id: r.attempt for r in got}
    assert by_id == {j.webhook_id: j.attempts + 1 for j in batch}  # each its own series
    assert await platform.depth(t.DEAD_QUEUE) == 0


async def test_a_batch_never_outgrows_the_frame_its_headers_travel_in(
    db: Conn, platform: Platform, receiver: Receiver, broker: Broker, start_worker: StartWorker
) -> None:
    """80 deliveries with a 2,000-character last error: 160 KB of headers, more than the
    128 KiB frame they would have to fit in as one AMQP table (format 1: several messages;
    format 2 carries them in its body: one)."""
    await seed_queue(db, 1, 1)
    hook = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    await start_worker(retry_delays=(DELAY,))
    batch = jobs(hook, 80)
    await asyncio.gather(
        *(broker.publish_wait(j.body, j.headers() | {t.H_ERROR: "x" * 2000}, DELAY, DELAY)
          for j in batch)
    )  # fmt: skip
    depth = await platform.depth(t.wait_queue(DELAY))
    assert 1 < depth < 80 if broker.wait_format == 1 else depth == 1
    got = await receiver.wait_for(80, within=15)
    assert {r.webhook_id for r in got} == {j.webhook_id for j in batch}


async def test_each_delivery_of_a_batch_dead_letters_on_its_own(
    db: Conn, platform: Platform, receiver: Receiver, broker: Broker, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    hook = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    await db.execute("UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1", hook)
    await start_worker(retry_delays=(DELAY,))
    batch = jobs(hook, 3)
    await put_together(broker, batch)
    dead = await platform.dead_letters(3)
    assert sorted(m.body for m in dead) == sorted(j.body for j in batch)
    for message in dead:
        assert message.content_type == "application/json"
        assert message.headers[t.H_REASON] == "disabled"
        assert message.headers[t.H_HOOK_ID] == hook
        assert t.H_JOBS not in message.headers
    assert receiver.requests == []


@pytest.mark.parametrize("fmt", [1, 2])
async def test_a_batch_whose_lines_and_headers_disagree_is_set_aside_whole(
    platform: Platform, receiver: Receiver, start_worker: StartWorker, fmt: int
) -> None:
    body, headers, content_type = pack([(j.headers(), j.body) for j in jobs(1, 3)], fmt)
    if fmt == 1:
        headers[t.H_JOBS] = headers[t.H_JOBS][:2]
    else:
        body = body[:-1]  # a byte short of what its table of contents says
    await start_worker()
    await platform.channel.default_exchange.publish(
        aio_pika.Message(body, headers=headers, content_type=content_type),
        routing_key=t.RETRY_QUEUE,
    )
    (dead,) = await platform.dead_letters(1)
    assert dead.body == body
    assert dead.headers[t.H_REASON] == "invalid"
    assert "does not match its" in str(dead.headers[t.H_ERROR])
    assert receiver.requests == []


def test_a_batch_unpacks_to_what_was_packed_and_one_item_is_no_batch() -> None:
    items = [(j.headers(), j.body) for j in jobs(7, 3)]
    for fmt, content_type in ((2, BATCH2_TYPE), (1, BATCH_TYPE)):
        body, headers, packed_type = pack(items, fmt)
        assert packed_type == content_type
        assert unpack(headers, body) == items
    body, headers, content_type = pack(items[:1])
    assert (body, headers, content_type) == (items[0][1], items[0][0], "application/json")
    assert unpack(headers, body) is None
    with pytest.raises(ValueError, match="does not match"):
        unpack({t.H_JOBS: [{}]}, b"a\nb")


async def test_a_put_off_while_the_connection_is_lost_fails_at_once_and_goes_once_back(
    platform: Platform,
) -> None:
    """Between a lost connection and the failover's new one, the old robust channel waits for
    a reconnect that never comes: a wait publish made then hung for ever, its event unacked
    and every later batch of its wait queue queued behind it (seen in `make chaos`, a wait
    queue's leader killed). It must fail at once (transient: the broker redelivers), and the
    wait queue must take deliveries again once a node is back."""
    settings = make_settings()
    target = settings.amqp_url.split("@", 1)[1].split("/", 1)[0]
    host, port = target.rsplit(":", 1)
    proxy = Proxy(host, int(port))
    await proxy.start()
    broker = Broker(
        settings.amqp_url.replace(target, f"127.0.0.1:{proxy.port}"),
        settings.exchange, (DELAY,), prefetch=1,
    )  # fmt: skip
    job = jobs(hook_id=1, count=1)[0]
    try:
        await broker.connect(attempts=3)
        await proxy.cut()  # refused from now on: the failover keeps walking the nodes
        await holds(lambda: not broker.connected)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(broker.publish_wait(job.body, job.headers(), DELAY, DELAY), 10)
        await proxy.start()
        await holds(lambda: broker.connected, within=60)
        await asyncio.wait_for(broker.publish_wait(job.body, job.headers(), DELAY, DELAY), 30)
    finally:
        await broker.close()
        await proxy.cut()
