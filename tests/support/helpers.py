"""Seeding the real database and talking to the real broker, as the platform and admins do."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aio_pika
import asyncpg
import orjson

from tests.support.receiver import Received, Receiver
from worker.broker import topology as t

if TYPE_CHECKING:
    Conn = asyncpg.Connection[Any]
else:
    Conn = asyncpg.Connection


async def seed_queue(
    db: Conn, queue_id: int, queue_type: int = 0, domain: int = 1, variables: Any = None
) -> int:
    await db.execute(
        "INSERT INTO queue_hooks.queues (id, domain_id, name, type, variables)"
        " VALUES ($1, $2, $3, $4, $5)",
        queue_id, domain, f"queue {queue_id}", queue_type, variables or {},
    )  # fmt: skip
    return queue_id


async def seed_schema(
    db: Conn,
    url: str,
    name: str | None = None,
    domain: int = 1,
    secret: str | None = None,
    headers: dict[str, str] | None = None,
    timeout_ms: int = 5000,
) -> int:
    schema_id: int = await db.fetchval(
        "INSERT INTO queue_hooks.schemas (domain_id, name, url, secret, headers, timeout_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        domain, name or f"schema {uuid.uuid4().hex[:8]}", url, secret, headers or {}, timeout_ms,
    )  # fmt: skip
    return schema_id


async def seed_hook(
    db: Conn, queue_id: int, event: str, schema_id: int, enabled: bool = True
) -> int:
    hook_id: int = await db.fetchval(
        "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id, enabled)"
        " VALUES ($1, $2, $3, $4) RETURNING id",
        queue_id, event, schema_id, enabled,
    )  # fmt: skip
    return hook_id


def event(queue_id: int, name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "event": name,
        "queue_id": queue_id,
        "occurred_at": "2026-11-24T10:00:00.250Z",
        "channel": "call",
    }
    body.update(fields)
    return body


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Polls `check` until it holds; a timeout fails the test (nothing here measures speed)."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - the broker offers nothing to wait on
            await asyncio.sleep(0.05)


async def holds(check: Callable[[], bool], within: float = 10.0) -> None:
    """`until` for a condition that needs no I/O to read."""

    async def checked() -> bool:
        return check()

    await until(checked, within)


async def delivered(platform: Platform, receiver: Receiver, path: str) -> list[Received]:
    """Publishes one `joined` of queue 1; returns what `path` got for it. A hook of the same
    event on `/marker` is called alongside: once it is, the event was handled."""
    sent = event(1, "joined")
    await platform.publish(sent)
    await receiver.wait_for(1, "/marker")
    await asyncio.sleep(0.3)  # room for a wrong extra call to show up
    hits = [r for r in receiver.at(path) if r.json["id"] == sent["id"]]
    receiver.requests.clear()
    return hits


@dataclass
class Platform:
    """Publishes events as the call-center platform does, and reads what the worker leaves."""

    channel: aio_pika.abc.AbstractChannel
    exchange: str

    async def publish(
        self, body: dict[str, Any] | bytes, routing_key: str | None = None, **props: Any
    ) -> bytes:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        if routing_key is None:
            parsed = body if isinstance(body, dict) else {}
            routing_key = f"queue.{parsed.get('queue_id', 0)}.{parsed.get('event', 'x')}"
        exchange = await self.channel.get_exchange(self.exchange)
        message = aio_pika.Message(
            raw,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            **props,
        )
        await exchange.publish(message, routing_key=routing_key, mandatory=True)
        return raw

    async def dead_letters(
        self, count: int, within: float = 20.0
    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Takes (acks) `count` messages from the dead-letter queue, waiting for them."""
        queue = await self.channel.get_queue(t.DEAD_QUEUE)
        got: list[aio_pika.abc.AbstractIncomingMessage] = []
        async with asyncio.timeout(within):
            while len(got) < count:
                message = await queue.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                await message.ack()
                got.append(message)
        return got

    async def depth(self, name: str) -> int:
        queue = await self.channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)
