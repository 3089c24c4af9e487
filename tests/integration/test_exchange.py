"""The events exchange as the worker declares it (contract §1): the platform's fixture declares
`cc.events` itself, so here the worker meets an exchange nobody declared, named by the setting."""

from __future__ import annotations

import uuid

import aio_pika

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema
from tests.support.receiver import Receiver


async def test_the_worker_declares_the_exchange_it_is_given_and_consumes_from_it(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    name = f"cc.events.{uuid.uuid4().hex[:8]}"  # QUEUE_HOOKS_EXCHANGE
    await seed_queue(db, 12, 1)
    await seed_hook(db, 12, "leaving", await seed_schema(db, receiver.url()))
    await start_worker(exchange=name)
    channel = platform.channel
    try:
        await channel.declare_exchange(name, passive=True)  # there, declared by the worker
        # Topic and durable: declared again with those arguments, the broker agrees (another
        # type or durability would close the channel with PRECONDITION_FAILED).
        await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        sent = event(12, "leaving")
        await Platform(channel, name).publish(sent, routing_key="queue.12.leaving")
        (request,) = await receiver.wait_for(1)
        assert request.json["id"] == sent["id"]
    finally:
        await channel.exchange_delete(name)
