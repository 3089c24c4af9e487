"""AMQP paths compared: aio-pika's objects against the aiormq channel under them.

    python -m bench.amqp [N]      # against the broker of QUEUE_HOOKS_AMQP_URL

Consuming: publishes N benchmark events to a scratch queue, consumes and acks them each way:
with aiormq's own frame receiver, then with the worker's (frames received in bulk).
Publishing: N confirmed publishes, 256 in flight, of a deferred delivery (its body and
headers) to a quorum queue, each way. Prints messages/s and this process's CPU time per
message. The figures are in the README, Performance.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import aio_pika
import uvloop
from aiormq.abc import DeliveredMessage
from pamqp import commands as amqp

from bench.workload import leaving
from worker.broker import frames
from worker.settings import Settings

QUEUE = "queue-hooks.bench.amqp"
HEADERS: dict[str, object] = {
    "queue-hooks-hook-id": 1, "queue-hooks-event-id": "00000002-0000-4000-8000-000000000413",
    "queue-hooks-event": "leaving", "queue-hooks-queue-id": 1, "queue-hooks-attempts": 0,
    "queue-hooks-tier": 0, "queue-hooks-deferred": 1,
    "queue-hooks-error": "deferred: schema 2 had 256 requests in flight, none finished lately",
}  # fmt: skip
Consume = Callable[[aio_pika.abc.AbstractChannel, int, asyncio.Event], Awaitable[None]]


async def with_aio_pika(channel: aio_pika.abc.AbstractChannel, n: int, done: asyncio.Event) -> None:
    queue = await channel.get_queue(QUEUE)
    seen = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        await message.ack()
        seen += 1
        if seen == n:
            done.set()

    await queue.consume(on_message)


async def with_underlay(channel: aio_pika.abc.AbstractChannel, n: int, done: asyncio.Event) -> None:
    raw = await channel.get_underlay_channel()
    seen = 0

    async def on_message(message: DeliveredMessage) -> None:
        nonlocal seen
        await message.channel.basic_ack(message.delivery_tag or 0)
        seen += 1
        if seen == n:
            done.set()

    await raw.basic_consume(QUEUE, on_message)


async def measure(url: str, n: int, consume: Consume) -> tuple[float, float]:
    conn = await aio_pika.connect(url)
    try:
        publisher = await conn.channel()
        queue = await publisher.declare_queue(QUEUE, durable=True)
        await queue.purge()
        for i in range(n):
            message = aio_pika.Message(leaving(1, i, 1), delivery_mode=2)
            await publisher.default_exchange.publish(message, routing_key=QUEUE)
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=1024)
        done = asyncio.Event()
        cpu, wall = time.process_time(), time.perf_counter()
        await consume(channel, n, done)
        await asyncio.wait_for(done.wait(), 300)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await channel.close()
        await publisher.queue_delete(QUEUE)
        return n / wall, cpu / n
    finally:
        await conn.close()


Publish = Callable[[aio_pika.abc.AbstractChannel, bytes], Awaitable[None]]


async def publish_aio_pika(channel: aio_pika.abc.AbstractChannel, body: bytes) -> None:
    message = aio_pika.Message(
        body, headers=HEADERS, content_type="application/json",  # type: ignore[arg-type]
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT, expiration=10,
    )  # fmt: skip
    await channel.default_exchange.publish(message, routing_key=QUEUE, mandatory=True)


async def publish_underlay(channel: aio_pika.abc.AbstractChannel, body: bytes) -> None:
    raw = await channel.get_underlay_channel()
    properties = amqp.Basic.Properties(
        headers=HEADERS, content_type="application/json",  # type: ignore[arg-type]
        delivery_mode=2, expiration="10000",
    )  # fmt: skip
    confirmation = await raw.basic_publish(
        body, routing_key=QUEUE, properties=properties, mandatory=True
    )
    assert isinstance(confirmation, amqp.Basic.Ack), confirmation


async def measure_publish(url: str, n: int, publish: Publish) -> tuple[float, float]:
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        body, lanes = leaving(1, 1, 1), asyncio.Semaphore(256)

        async def one() -> None:
            async with lanes:
                await publish(channel, body)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await channel.queue_delete(QUEUE)
        return n / wall, cpu / n
    finally:
        await conn.close()


async def main(n: int) -> None:
    url = Settings().amqp_url
    for name, consume in (
        ("consume, aio-pika", with_aio_pika),
        ("consume, underlay", with_underlay),
    ):
        for _ in range(2):
            rate, cpu = await measure(url, n, consume)
            print(f"{name:<20} {rate:>8.0f} messages/s {cpu * 1e6:>6.1f} us CPU/message")
    frames.install()  # from here on, as the worker receives: in bulk (worker/broker/frames.py)
    for _ in range(2):
        rate, cpu = await measure(url, n, with_underlay)
        print(
            f"{'consume, bulk frames':<20} {rate:>8.0f} messages/s {cpu * 1e6:>6.1f} us CPU/message"
        )
    for name, publish in (
        ("publish, aio-pika", publish_aio_pika),
        ("publish, underlay", publish_underlay),
    ):
        for _ in range(2):
            rate, cpu = await measure_publish(url, n // 2, publish)
            print(f"{name:<20} {rate:>8.0f} messages/s {cpu * 1e6:>6.1f} us CPU/message")


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
