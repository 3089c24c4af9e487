"""`queue-hooks migrate`: apply the numbered files of deploy/sql once each, in order."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

from worker.errors import Fatal

_FILE = re.compile(r"(\d{4})_[\w-]+\.sql\Z")
_LOCK = 0x7175_6575_686B  # "queuhk": one migrator at a time across workers


def sql_dir() -> Path:
    """deploy/sql in a checkout; worker/sql inside an installed wheel."""
    packaged = Path(str(resources.files("worker"))) / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "deploy" / "sql"


def migration_files() -> list[tuple[int, Path]]:
    found = [(int(m[1]), p) for p in sql_dir().iterdir() if (m := _FILE.match(p.name))]
    return sorted(found)


async def migrate(conn: asyncpg.Connection[Any]) -> list[str]:
    """Returns the names of the files applied now (empty when already up to date)."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
    try:
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS queue_hooks;
            CREATE TABLE IF NOT EXISTS queue_hooks.schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """
        )
        done = {
            r["version"]
            for r in await conn.fetch("SELECT version FROM queue_hooks.schema_migrations")
        }
        for version, path in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute(
                    "INSERT INTO queue_hooks.schema_migrations (version, name) VALUES ($1, $2)",
                    version, path.name,
                )  # fmt: skip
            applied_now.append(path.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
    return applied_now


async def pending(conn: asyncpg.Connection[Any]) -> list[str]:
    """The migration files not applied yet. Needs no privilege beyond reading the table."""
    exists = await conn.fetchval("SELECT to_regclass('queue_hooks.schema_migrations') IS NOT NULL")
    done: set[int] = set()
    if exists:
        done = {
            r["version"]
            for r in await conn.fetch("SELECT version FROM queue_hooks.schema_migrations")
        }
    return [path.name for version, path in migration_files() if version not in done]


async def ensure_migrated(conn: asyncpg.Connection[Any]) -> None:
    """At worker start: migrate only when behind, so a worker running as the least-privilege
    role (0002_worker_role.sql), which may not run DDL, starts against a current database."""
    behind = await pending(conn)
    if not behind:
        return
    try:
        await migrate(conn)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise Fatal(
            f"the database needs {', '.join(behind)} and this user may not apply it ({exc}):"
            " run `queue-hooks migrate` as the schema's owner"
        ) from None
