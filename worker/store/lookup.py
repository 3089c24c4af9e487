"""Reads for the ops commands: which hooks may take a replay, and is the database usable."""

from __future__ import annotations

from typing import NamedTuple

import asyncpg

from worker.store.db import connect


class NotMigrated(LookupError):
    """The tables are not there: `queue-hooks migrate` has not run against this database."""


class HookState(NamedTuple):
    enabled: bool
    queue_id: int
    event: str


async def hook_states(dsn: str) -> dict[int, HookState]:
    """hook id -> what it is now, for every hook that exists (a deleted hook is absent)."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT id, enabled, queue_id, event FROM queue_hooks.hooks")
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        raise NotMigrated("the queue_hooks tables are missing: run `queue-hooks migrate`") from None
    finally:
        await conn.close()
    return {
        int(r["id"]): HookState(bool(r["enabled"]), int(r["queue_id"]), str(r["event"]))
        for r in rows
    }


async def probe(dsn: str) -> tuple[int, int]:
    """(enabled hooks, latest migration): proves the database answers and is migrated."""
    conn = await connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM queue_hooks.hooks WHERE enabled) AS hooks,"
            " (SELECT max(version) FROM queue_hooks.schema_migrations) AS version"
        )
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        raise NotMigrated("the queue_hooks tables are missing: run `queue-hooks migrate`") from None
    finally:
        await conn.close()
    assert row is not None
    return int(row["hooks"]), int(row["version"] or 0)


async def unsigned_schemas(dsn: str, key: str | None) -> dict[int, str]:
    """schema id -> why its secret cannot be read with `key` (the worker's view of it)."""
    from worker.secrets import SecretError, unseal

    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT id, secret FROM queue_hooks.schemas ORDER BY id")
    finally:
        await conn.close()
    out: dict[int, str] = {}
    for row in rows:
        try:
            unseal(row["secret"], key)
        except SecretError as exc:
            out[int(row["id"])] = str(exc)
    return out
