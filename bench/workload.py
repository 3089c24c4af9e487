"""What the benchmark feeds the worker: fixed events, fixed hooks, a backlog on the broker.

Everything is deterministic: event ids count up, payloads never change, hooks are the same.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
import orjson

from worker.broker import topology as t
from worker.settings import Settings
from worker.store import connect, migrate

# A fixed, public benchmark secret: the deliveries are signed as in production.
SECRET = "whsec_" + base64.b64encode(b"queue-hooks benchmark secret, 32b").decode()
# `leaving` carries the most fields (contract §3); the engine sends them as strings.
FIELDS: dict[str, str] = {
    "channel": "call", "attempt_id": "1001", "destination": "+15550100",
    "use_processing": "true", "agent_channel_id": "a1b2c3d4-0000-4000-8000-00000000a9e1",
    "member_channel_id": "a1b2c3d4-0000-4000-8000-00000000b0b1", "agent_name": "Alice Agent",
    "agent_id": "7", "user_id": "70", "agent_extension": "1007", "member_name": "Bob Member",
    "member_id": "4242", "cc_attempt_seq": "1", "cc_result": "success", "call_bill_sec": "42",
    "call_duration": "57.5", "call_cause": "NORMAL_CLEARING", "call_sip_code": "200",
    "amd_result": "HUMAN", "call_voice_sec": "40",
}  # fmt: skip
VARIABLES = {f"member_var_{i:02d}": f"value number {i} of the member" for i in range(20)}
DELAYS = Settings(_env_file=None).retry_delays  # the worker runs with the default tiers


def event_id(run: int, n: int) -> str:
    return f"{run:08x}-0000-4000-8000-{n:012x}"


def leaving(run: int, n: int, queue_id: int) -> bytes:
    body: dict[str, object] = {
        "id": event_id(run, n),
        "event": "leaving",
        "queue_id": str(queue_id),
        "occurred_at": "2026-11-24T10:00:00.250Z",
        **FIELDS,
        "variables": VARIABLES,
    }
    return orjson.dumps(body)


# -- the database ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    queue_id: int
    url: str
    timeout_ms: int = 10000


async def start_empty(conn: asyncpg.Connection[Any]) -> None:
    """The schema migrated and no queue, schema or hook left from an earlier run."""
    await migrate(conn)
    await conn.execute(
        "TRUNCATE queue_hooks.hooks, queue_hooks.schemas, queue_hooks.queues"
        " RESTART IDENTITY CASCADE"
    )


async def seed(dsn: str, targets: Sequence[Target], filler: int = 0) -> None:
    """Exactly these hooks (one `leaving` hook per target), plus `filler` hooks that never
    fire in the run (other queues), so the cache holds `len(targets) + filler` hooks."""
    conn = await connect(dsn)
    try:
        await start_empty(conn)
        for i, target in enumerate(targets):
            await conn.execute(
                "INSERT INTO queue_hooks.queues (id, domain_id, name, type) VALUES ($1, 1, $2, 0)"
                " ON CONFLICT DO NOTHING",
                target.queue_id, f"bench queue {target.queue_id}",
            )  # fmt: skip
            schema_id = await conn.fetchval(
                "INSERT INTO queue_hooks.schemas (domain_id, name, url, secret, timeout_ms)"
                " VALUES (1, $1, $2, $3, $4) RETURNING id",
                f"bench schema {i}", target.url, SECRET, target.timeout_ms,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id)"
                " VALUES ($1, 'leaving', $2)",
                target.queue_id, schema_id,
            )  # fmt: skip
        if filler:
            await _filler(conn, filler)
    finally:
        await conn.close()


async def _filler(conn: Any, count: int) -> None:
    """`count` hooks on queues 1001.. (5 events each), over 100 schemas of an idle URL."""
    queues = (count + 4) // 5
    await conn.execute(
        "INSERT INTO queue_hooks.schemas (domain_id, name, url, secret)"
        " SELECT 1, 'filler ' || g, 'http://127.0.0.1:9/filler/' || g, $1"
        " FROM generate_series(1, 100) g",
        SECRET,
    )
    await conn.execute(
        "INSERT INTO queue_hooks.queues (id, domain_id, name, type, variables)"
        " SELECT 1000 + g, 1, 'filler ' || g, 0, '{\"tenant\": \"filler\"}'::jsonb"
        " FROM generate_series(1, $1::int) g",
        queues,
    )
    await conn.execute(
        "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id)"
        " SELECT 1000 + q, e, (SELECT min(id) FROM queue_hooks.schemas) + (q % 100)"
        " FROM generate_series(1, $1::int) q,"
        " unnest(ARRAY['joined', 'offering', 'bridged', 'missed', 'processing']) e"
        " LIMIT $2",
        queues, count,
    )  # fmt: skip


async def touch_filler_hook(dsn: str, flip: bool) -> None:
    """An admin's edit elsewhere: one filler hook disabled or enabled (bumps the revision)."""
    conn = await connect(dsn)
    try:
        await conn.execute(
            "UPDATE queue_hooks.hooks SET enabled = $1"
            " WHERE id = (SELECT max(id) FROM queue_hooks.hooks)",
            flip,
        )
    finally:
        await conn.close()


# -- the broker -----------------------------------------------------------------------------
class Broker:
    """The platform's side: declares our topology, publishes backlogs, empties queues."""

    def __init__(self, url: str, exchange: str) -> None:
        self.url = url
        self.exchange_name = exchange
        self.conn: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.version = "?"

    async def open(self) -> None:
        self.conn = await aio_pika.connect(self.url)
        props = getattr(self.conn.transport.connection, "server_properties", {})  # type: ignore[union-attr]
        self.version = str(props.get("version", "?"))
        self.channel = await self.conn.channel(publisher_confirms=True)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()

    def _ch(self) -> aio_pika.abc.AbstractChannel:
        assert self.channel is not None
        return self.channel

    async def reset(self) -> None:
        """Our queues deleted and declared again, empty, as the worker declares them."""
        channel = self._ch()
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for spec in t.queue_specs(DELAYS):
            await channel.queue_delete(spec.name)
            queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            if spec.name == t.EVENTS_QUEUE:
                await queue.bind(exchange, t.BINDING_KEY)

    async def publish(self, bodies: Sequence[tuple[int, bytes]], window: int = 1000) -> None:
        """Persistent, confirmed, `window` at a time: (queue_id, body) pairs, in order."""
        exchange = await self._ch().get_exchange(self.exchange_name)
        for start in range(0, len(bodies), window):
            await asyncio.gather(
                *(
                    exchange.publish(_message(body), routing_key=f"queue.{q}.leaving")
                    for q, body in bodies[start : start + window]
                )
            )

    async def publish_one(self, queue_id: int, body: bytes) -> None:
        exchange = await self._ch().get_exchange(self.exchange_name)
        await exchange.publish(_message(body), routing_key=f"queue.{queue_id}.leaving")

    async def consumers(self, name: str = t.EVENTS_QUEUE) -> int:
        queue = await self._ch().declare_queue(name, passive=True)
        return int(queue.declaration_result.consumer_count or 0)

    async def ready(self, name: str = t.EVENTS_QUEUE) -> int:
        queue = await self._ch().declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)


def _message(body: bytes) -> aio_pika.Message:
    return aio_pika.Message(
        body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
    )
