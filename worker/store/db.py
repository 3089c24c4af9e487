"""Connections: JSON codecs, and waiting for a database that is not up yet."""

from __future__ import annotations

import asyncio
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


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """Nothing to undo when a connection goes back to the pool: the API sets no session state
    (its `set_config` is local to a transaction), takes no advisory lock and never LISTENs.
    asyncpg still rolls back an open transaction first; its default reset (`RESET ALL`, `CLOSE
    ALL`, ...) would cost one more round trip per request (6 % of the API's py-spy samples in the
    bench's mixed load)."""


async def create_pool(dsn: str, size: int) -> asyncpg.Pool[Any]:
    """The API's connections, each with the JSON codecs. None is made up front (min_size 0),
    so the API starts, and says on /readyz that it cannot reach the database, while it is
    down; each connection is made with the whole URL, so a multi-host URL
    (`target_session_attrs=read-write`) reaches whichever host is the primary now."""
    pool: asyncpg.Pool[Any] = await asyncpg.create_pool(
        dsn, min_size=0, max_size=size, init=_init, reset=_keep_session, timeout=10
    )
    return pool


async def unready(pool: asyncpg.Pool[Any], within: float) -> str | None:
    """Why the pool cannot serve now (one line), or None when it can: a connection (to the
    primary, for a multi-host URL) that sees the migrated tables, all within `within` s."""
    from worker.errors import one_line

    try:
        async with asyncio.timeout(within), pool.acquire() as conn:
            migrated = await conn.fetchval("SELECT to_regclass('queue_hooks.tokens') IS NOT NULL")
    except Exception as exc:  # whatever it is, the answer is "not now", with its words
        return one_line(exc)
    return None if migrated else "no queue_hooks tables: run `queue-hooks migrate`"


async def wait_for_database(dsn: str, *, attempts: int | None = None) -> asyncpg.Connection[Any]:
    """Connect, waiting with backoff while the database is down (contract §7)."""
    return await keep_trying(
        lambda: connect(dsn), "database unreachable, waiting", attempts=attempts, logger=log
    )
