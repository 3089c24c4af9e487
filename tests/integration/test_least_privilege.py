"""The worker runs as the least-privilege role of deploy/sql/0002_worker_role.sql (issue 6)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.receiver import Receiver, status
from tests.support.settings import make_settings
from worker.store import connect

LOGIN = "queue_hooks_worker_test"


def as_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
async def worker_dsn(db: Conn) -> AsyncIterator[str]:
    """A login role that has only the rights of queue_hooks_worker, as deploy/sql/README.md
    tells ops to create it (the test cluster trusts local logins: no password needed)."""
    await db.execute(f"DROP ROLE IF EXISTS {LOGIN}")
    await db.execute(f"CREATE ROLE {LOGIN} LOGIN IN ROLE queue_hooks_worker")
    try:
        yield as_user(make_settings().database_url, LOGIN)
    finally:
        await db.execute(f"DROP ROLE IF EXISTS {LOGIN}")


async def test_the_worker_role_may_read_and_disable_hooks_and_nothing_else(
    db: Conn, worker_dsn: str
) -> None:
    await seed_queue(db, 1, 1)
    schema = await seed_schema(db, "https://crm.example/hook")
    hook = await seed_hook(db, 1, "joined", schema)
    conn = await connect(worker_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM queue_hooks.hooks") == 1
        await conn.execute("UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1", hook)
        denied = [
            "INSERT INTO queue_hooks.queues (id, domain_id, name, type) VALUES (9, 1, 'x', 1)",
            "DELETE FROM queue_hooks.hooks",
            "UPDATE queue_hooks.hooks SET schema_id = schema_id",
            "UPDATE queue_hooks.schemas SET url = 'https://evil.example/'",
            "UPDATE queue_hooks.schemas SET secret = NULL",
            "TRUNCATE queue_hooks.hooks",
            "CREATE TABLE queue_hooks.mine (id int)",
            "DROP TABLE queue_hooks.hooks",
            "INSERT INTO queue_hooks.schema_migrations (version, name) VALUES (99, 'x')",
        ]
        for sql in denied:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    finally:
        await conn.close()
    assert await db.fetchval("SELECT enabled FROM queue_hooks.hooks WHERE id = $1", hook) is False


async def test_a_worker_runs_as_the_worker_role(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker, worker_dsn: str
) -> None:
    await seed_queue(db, 1, 1)
    gone = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/gone")))
    receiver.on("/gone", status(410))
    await start_worker(database_url=worker_dsn)  # starts: no DDL needed on a current database
    await platform.publish(event(1, "joined"))
    (dead,) = await platform.dead_letters(1)
    assert dead.headers["queue-hooks-reason"] == "gone"

    # It disabled the hook with its one UPDATE right, and the change notified the cache.
    async def disabled() -> bool:
        return bool(
            await db.fetchval("SELECT NOT enabled FROM queue_hooks.hooks WHERE id = $1", gone)
        )

    await until(disabled)
    # A hook added by an admin reaches it through LISTEN/NOTIFY, which needs no grant.
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/new")))

    async def delivered() -> bool:
        await platform.publish(event(1, "joined"))
        return bool(receiver.at("/new"))

    await until(delivered, within=15)
    assert len(receiver.at("/gone")) == 1
