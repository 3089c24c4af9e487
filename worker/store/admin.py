"""Writes outside the cache: what the worker and the admin commands change in the tables.

The admin queries take a connection opened by `session()`, which runs a command in one
transaction and turns the database's own refusals (a constraint, a trigger) into `Refused`,
worded as the database worded them. Deciding what may be done is the caller's business; the
database stays the last word on it (contract §2).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from worker.errors import is_transient
from worker.store.db import connect

if TYPE_CHECKING:
    Conn = asyncpg.Connection[Any]
else:
    Conn = asyncpg.Connection
Row = asyncpg.Record


class Refused(Exception):
    """The database said no; the message is its own."""


async def disable_hook(dsn: str, hook_id: int) -> bool:
    """After a 410 Gone (contract §5). True when a hook was enabled and is now disabled."""
    conn = await connect(dsn)
    try:
        status: str = await conn.execute(
            "UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1 AND enabled", hook_id
        )
    finally:
        await conn.close()
    return status.endswith(" 1")


def db_words(exc: asyncpg.PostgresError) -> str:
    """The message, and its detail when there is one (which key), but never a whole failing
    row: a schema's row holds its secret."""
    message, detail = getattr(exc, "message", None) or str(exc), getattr(exc, "detail", None)
    if detail and detail.startswith("Failing row contains"):
        detail = None
    return " ".join((f"{message} ({detail})" if detail else message).split())


@contextlib.asynccontextmanager
async def session(dsn: str) -> AsyncIterator[Conn]:
    """One connection, one transaction: a command changes all it was asked to, or nothing."""
    try:
        conn = await connect(dsn)
        try:
            async with conn.transaction():
                yield conn
        finally:
            await conn.close()
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
        raise Refused(f"database refused: {db_words(exc)}") from None
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        raise Refused("the database has no queue_hooks tables: run `queue-hooks migrate`") from None
    except asyncpg.PostgresError as exc:
        if is_transient(exc):
            raise  # the entry point says: cannot reach a service
        raise Refused(f"database error: {db_words(exc)}") from None


# -- queues ------------------------------------------------------------------------------------
_QUEUE = """
SELECT q.id, q.domain_id, q.name, q.type, q.variables,
       (SELECT count(*) FROM queue_hooks.hooks h WHERE h.queue_id = q.id) AS hooks
FROM queue_hooks.queues q
"""


async def queue(conn: Conn, queue_id: int) -> Row | None:
    return await conn.fetchrow(_QUEUE + " WHERE q.id = $1", queue_id)


async def queues(conn: Conn, domain: int | None, offset: int, limit: int) -> list[Row]:
    return await conn.fetch(
        _QUEUE + " WHERE $1::bigint IS NULL OR q.domain_id = $1 ORDER BY q.id OFFSET $2 LIMIT $3",
        domain, offset, limit,
    )  # fmt: skip


async def count_queues(conn: Conn, domain: int | None) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM queue_hooks.queues WHERE $1::bigint IS NULL OR domain_id = $1",
        domain,
    )
    return n


async def add_queue(
    conn: Conn, queue_id: int, domain: int, name: str, queue_type: int, variables: dict[str, str]
) -> None:
    await conn.execute(
        "INSERT INTO queue_hooks.queues (id, domain_id, name, type, variables)"
        " VALUES ($1, $2, $3, $4, $5)",
        queue_id, domain, name, queue_type, variables,
    )  # fmt: skip


# -- schemas -----------------------------------------------------------------------------------
_SCHEMA = """
SELECT s.id, s.domain_id, s.name, s.url, s.headers, s.timeout_ms, s.secret, s.max_per_second,
       s.previous_secret IS NOT NULL AND s.previous_secret_until > now() AS rotating,
       s.previous_secret_until,
       (SELECT count(*) FROM queue_hooks.hooks h WHERE h.schema_id = s.id) AS hooks
FROM queue_hooks.schemas s
"""
# Part of the name, case-insensitive: the platform's schema picker is also a search box.
_SEARCH = "($1::text IS NULL OR position(lower($1) IN lower(s.name)) > 0)"
_IN_DOMAIN = "($2::bigint IS NULL OR s.domain_id = $2)"


async def schema(conn: Conn, schema_id: int) -> Row | None:
    return await conn.fetchrow(_SCHEMA + " WHERE s.id = $1", schema_id)


async def schemas(
    conn: Conn, search: str | None, domain: int | None, offset: int = 0, limit: int = 1000
) -> list[Row]:
    """Matching schemas, those whose whole name matches first (lower(name) = search)."""
    return await conn.fetch(
        f"{_SCHEMA} WHERE {_SEARCH} AND {_IN_DOMAIN}"
        " ORDER BY lower(s.name) = lower($1) DESC, s.id OFFSET $3 LIMIT $4",
        search, domain, offset, limit,
    )  # fmt: skip


async def count_schemas(conn: Conn, search: str | None, domain: int | None) -> int:
    n: int = await conn.fetchval(
        f"SELECT count(*) FROM queue_hooks.schemas s WHERE {_SEARCH} AND {_IN_DOMAIN}",
        search, domain,
    )  # fmt: skip
    return n


async def add_schema(
    conn: Conn, domain: int, name: str, url: str, timeout_ms: int,
    headers: dict[str, str], secret: str | None, max_per_second: float | None = None,
) -> int:  # fmt: skip
    schema_id: int = await conn.fetchval(
        "INSERT INTO queue_hooks.schemas"
        " (domain_id, name, url, timeout_ms, headers, secret, max_per_second)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        domain, name, url, timeout_ms, headers, secret, max_per_second,
    )  # fmt: skip
    return schema_id


_EDITABLE = ("name", "url", "timeout_ms", "headers", "max_per_second")


async def edit_schema(conn: Conn, schema_id: int, changes: dict[str, Any]) -> None:
    columns = [c for c in _EDITABLE if c in changes]
    sets = ", ".join(f"{c} = ${n}" for n, c in enumerate(columns, start=2))
    await conn.execute(
        f"UPDATE queue_hooks.schemas SET {sets} WHERE id = $1",
        schema_id, *(changes[c] for c in columns),
    )  # fmt: skip


async def rotate_secret(conn: Conn, schema_id: int, secret: str, grace: float) -> datetime | None:
    """The new secret signs from now on; the old one also signs for `grace` seconds (none
    if there was no old one). Returns until when the old one still signs."""
    until: datetime | None = await conn.fetchval(
        """
        UPDATE queue_hooks.schemas
        SET previous_secret = CASE WHEN $3::float8 > 0 THEN secret END,
            previous_secret_until = CASE WHEN $3::float8 > 0 AND secret IS NOT NULL
                                         THEN now() + make_interval(secs => $3::float8) END,
            secret = $2
        WHERE id = $1
        RETURNING previous_secret_until
        """,
        schema_id, secret, grace,
    )  # fmt: skip
    return until


async def hooks_of_schema(conn: Conn, schema_id: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM queue_hooks.hooks WHERE schema_id = $1 ORDER BY id", schema_id
    )
    return [r["id"] for r in rows]


async def delete_schema(conn: Conn, schema_id: int) -> None:
    await conn.execute("DELETE FROM queue_hooks.schemas WHERE id = $1", schema_id)


# -- hooks -------------------------------------------------------------------------------------
_HOOK = """
SELECT h.id, h.queue_id, h.event, h.schema_id, h.enabled, h.created_at, h.updated_at,
       s.name AS schema_name, q.domain_id, q.type AS queue_type, q.name AS queue_name
FROM queue_hooks.hooks h
JOIN queue_hooks.schemas s ON s.id = h.schema_id
JOIN queue_hooks.queues q ON q.id = h.queue_id
"""
_FILTER = """
WHERE h.queue_id = $1 AND ($2::text IS NULL OR h.event = $2)
  AND ($3::boolean IS NULL OR h.enabled = $3)
"""


async def hooks(
    conn: Conn, queue_id: int, event: str | None, enabled: bool | None, offset: int, limit: int
) -> list[Row]:
    return await conn.fetch(
        _HOOK + _FILTER + " ORDER BY h.id OFFSET $4 LIMIT $5",
        queue_id, event, enabled, offset, limit,
    )  # fmt: skip


async def count_hooks(conn: Conn, queue_id: int, event: str | None, enabled: bool | None) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM queue_hooks.hooks h" + _FILTER, queue_id, event, enabled
    )
    return n


async def hooks_by_id(conn: Conn, ids: Sequence[int]) -> list[Row]:
    return await conn.fetch(_HOOK + " WHERE h.id = ANY($1::bigint[]) ORDER BY h.id", list(ids))


async def same_hook(conn: Conn, queue_id: int, event: str, schema_id: int) -> int | None:
    """The hook that already calls this schema on this event of this queue, if any."""
    hook_id: int | None = await conn.fetchval(
        "SELECT id FROM queue_hooks.hooks WHERE queue_id = $1 AND event = $2 AND schema_id = $3",
        queue_id, event, schema_id,
    )  # fmt: skip
    return hook_id


async def add_hook(conn: Conn, queue_id: int, event: str, schema_id: int, enabled: bool) -> int:
    hook_id: int = await conn.fetchval(
        "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id, enabled)"
        " VALUES ($1, $2, $3, $4) RETURNING id",
        queue_id, event, schema_id, enabled,
    )  # fmt: skip
    return hook_id


async def edit_hook(conn: Conn, hook_id: int, event: str, schema_id: int) -> None:
    await conn.execute(
        "UPDATE queue_hooks.hooks SET event = $2, schema_id = $3 WHERE id = $1",
        hook_id, event, schema_id,
    )  # fmt: skip


async def set_enabled(conn: Conn, ids: Sequence[int], enabled: bool) -> list[int]:
    """Returns the ids that changed (the others were already so)."""
    rows = await conn.fetch(
        "UPDATE queue_hooks.hooks SET enabled = $2"
        " WHERE id = ANY($1::bigint[]) AND enabled <> $2 RETURNING id",
        list(ids), enabled,
    )  # fmt: skip
    return sorted(r["id"] for r in rows)


async def delete_hooks(conn: Conn, ids: Sequence[int]) -> list[int]:
    rows = await conn.fetch(
        "DELETE FROM queue_hooks.hooks WHERE id = ANY($1::bigint[]) RETURNING id", list(ids)
    )
    return sorted(r["id"] for r in rows)
