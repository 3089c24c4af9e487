"""For `queue-hooks check`: what RabbitMQ says about our queues, over one short connection."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import aio_pika

from worker.broker.nodes import Nodes
from worker.broker.topology import DEAD_QUEUE, EVENTS_QUEUE, RETRY_QUEUE
from worker.urls import amqp_nodes


@dataclass(frozen=True)
class QueueState:
    messages: int  # ready, not yet taken by a consumer
    consumers: int


async def queue_states(url: str) -> dict[str, QueueState | None]:
    """Each of our main queues' state; None for a queue that does not exist (yet)."""
    conn = await Nodes(amqp_nodes(url)).plain()
    states: dict[str, QueueState | None] = {}
    try:
        for name in (EVENTS_QUEUE, RETRY_QUEUE, DEAD_QUEUE):
            # A passive declare of a missing queue closes its channel: one channel each.
            channel = await conn.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                result = queue.declaration_result
                states[name] = QueueState(
                    int(result.message_count or 0), int(result.consumer_count or 0)
                )
            except aio_pika.exceptions.ChannelNotFoundEntity:
                states[name] = None
            finally:
                if not channel.is_closed:
                    with contextlib.suppress(Exception):
                        await channel.close()
    finally:
        await conn.close()
    return states
