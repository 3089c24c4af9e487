"""Connections: JSON codecs, and waiting for a database that is not up yet."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import structlog

from worker.backoff import keep_trying

log = structlog.get_logger("queue_hooks.store")


async def _init(conn: asyncpg.Connection[Any]) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
        )  # fmt: skip


async def connect(dsn: str) -> asyncpg.Connection[Any]:
    conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn, timeout=10)
    await _init(conn)
    return conn


async def create_pool(dsn: str, size: int) -> asyncpg.Pool[Any]:
    """The API's connections, each with the JSON codecs."""
    pool: asyncpg.Pool[Any] = await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, init=_init, timeout=10
    )
    return pool


async def wait_for_database(dsn: str, *, attempts: int | None = None) -> asyncpg.Connection[Any]:
    """Connect, waiting with backoff while the database is down (contract §7)."""
    return await keep_trying(
        lambda: connect(dsn), "database unreachable, waiting", attempts=attempts, logger=log
    )
