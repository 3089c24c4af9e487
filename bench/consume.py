"""Consuming compared: aio-pika's consumer against the aiormq channel under it, CPU per message.

    python -m bench.consume [N]      # against the broker of QUEUE_HOOKS_AMQP_URL

Publishes N benchmark events to a scratch queue, consumes and acks them each way, and prints
messages/s and the consumer's CPU time per message. The figures are in the README, Performance.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import aio_pika
import uvloop
from aiormq.abc import DeliveredMessage

from bench.workload import leaving
from worker.settings import Settings

QUEUE = "queue-hooks.bench.consume"
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


async def main(n: int) -> None:
    url = Settings().amqp_url
    for name, consume in (("aio-pika consumer", with_aio_pika), ("underlay", with_underlay)):
        for _ in range(2):
            rate, cpu = await measure(url, n, consume)
            print(f"{name:<20} {rate:>8.0f} messages/s {cpu * 1e6:>6.1f} us CPU/message")


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
