"""The database guards itself (contract §2, §4): run as an admin would, in plain SQL."""

from __future__ import annotations

import asyncio
import base64

import asyncpg
import pytest

from schemas.queue_types import EVENTS, FIRES
from tests.support.helpers import Conn, seed_hook, seed_queue, seed_schema, until
from worker.store import connect, migrate


async def test_migrate_is_safe_to_run_again(db: Conn) -> None:
    assert await migrate(db) == []
    versions = await db.fetch("SELECT version FROM queue_hooks.schema_migrations ORDER BY 1")
    assert next(r["version"] for r in versions) == 1


async def test_the_sql_table_of_types_and_events_is_the_contracts(db: Conn) -> None:
    rows = await db.fetch(
        "SELECT t, e, queue_hooks.type_fires(t::smallint, e) AS fires"
        " FROM generate_series(0, 7) t, unnest($1::text[]) e",
        list(EVENTS),
    )
    assert {(r["t"], r["e"]) for r in rows if r["fires"]} == {
        (t, e) for t, events in FIRES.items() for e in events
    }


async def test_a_hook_of_an_event_its_queue_never_fires_is_refused(db: Conn) -> None:
    await seed_queue(db, 12, 1)  # inbound: no `answered`, no `active`
    schema = await seed_schema(db, "https://crm.example/hook")
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await seed_hook(db, 12, "answered", schema)
    message = str(caught.value)
    assert "queue 12" in message and '"answered"' in message and f"schema {schema}" in message
    assert "it fires: joined, offering, bridged, missed, leaving, processing" in message


async def test_a_hook_calling_a_schema_of_another_domain_is_refused(db: Conn) -> None:
    await seed_queue(db, 12, 1, domain=1)
    schema = await seed_schema(db, "https://crm.example/hook", domain=2)
    with pytest.raises(asyncpg.CheckViolationError, match=f"schema {schema} is in domain 2"):
        await seed_hook(db, 12, "leaving", schema)


async def test_changing_a_hook_is_checked_too(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    schema = await seed_schema(db, "https://crm.example/hook")
    other = await seed_schema(db, "https://other.example/hook", domain=2)
    hook = await seed_hook(db, 12, "leaving", schema)
    with pytest.raises(asyncpg.CheckViolationError, match=f"hook {hook} refused"):
        await db.execute("UPDATE queue_hooks.hooks SET event = 'active' WHERE id = $1", hook)
    with pytest.raises(asyncpg.CheckViolationError, match=f"hook {hook} refused"):
        await db.execute("UPDATE queue_hooks.hooks SET schema_id = $1 WHERE id = $2", other, hook)


async def test_changing_a_queue_type_or_domain_under_its_hooks_is_refused(db: Conn) -> None:
    await seed_queue(db, 12, 0)  # offline queue fires `answered`
    schema = await seed_schema(db, "https://crm.example/hook")
    hook = await seed_hook(db, 12, "answered", schema)
    with pytest.raises(asyncpg.CheckViolationError, match=f'event "answered" of hook {hook}'):
        await db.execute("UPDATE queue_hooks.queues SET type = 1 WHERE id = 12")
    with pytest.raises(asyncpg.CheckViolationError, match=f"hook {hook}"):
        await db.execute("UPDATE queue_hooks.queues SET domain_id = 2 WHERE id = 12")
    await db.execute("UPDATE queue_hooks.queues SET type = 3 WHERE id = 12")  # also fires it


async def test_moving_a_schema_to_another_domain_under_its_hooks_is_refused(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    schema = await seed_schema(db, "https://crm.example/hook")
    hook = await seed_hook(db, 12, "leaving", schema)
    with pytest.raises(asyncpg.CheckViolationError, match=f"hook {hook}"):
        await db.execute("UPDATE queue_hooks.schemas SET domain_id = 9 WHERE id = $1", schema)


async def test_table_constraints(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    schema = await seed_schema(db, "https://crm.example/hook")
    await seed_hook(db, 12, "leaving", schema)
    with pytest.raises(asyncpg.UniqueViolationError):
        await seed_hook(db, 12, "leaving", schema)
    with pytest.raises(asyncpg.CheckViolationError):
        await seed_schema(db, "ftp://crm.example/hook")
    with pytest.raises(asyncpg.CheckViolationError):
        await seed_schema(db, "https://crm.example/", secret="whsec_dG9vc2hvcnQ=")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute("DELETE FROM queue_hooks.schemas WHERE id = $1", schema)
    await db.execute("DELETE FROM queue_hooks.queues WHERE id = 12")  # cascades to its hooks
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.hooks") == 0


def _whsec(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(size))).decode()


@pytest.mark.parametrize(
    ("secret", "taken"),
    [
        pytest.param(_whsec(24), True, id="24-bytes"),
        pytest.param(_whsec(64), True, id="64-bytes"),
        pytest.param(_whsec(23), False, id="23-bytes"),
        pytest.param(_whsec(65), False, id="65-bytes"),
        pytest.param(_whsec(25).rstrip("="), False, id="padding-missing"),
        pytest.param(_whsec(25) + "=", False, id="padding-extra"),
        # PostgreSQL's decode() skips white space; base64 (and `schemas add`, and a receiver's
        # strict decoder) does not: the table took a secret the commands refuse.
        pytest.param(_whsec(24)[:20] + " " + _whsec(24)[20:], False, id="space-inside"),
        pytest.param(_whsec(24)[:20] + "\n" + _whsec(24)[20:], False, id="line-break-inside"),
        pytest.param(_whsec(24) + "\n", False, id="line-break-after"),
        pytest.param("whsec_" + "-_" * 16, False, id="url-safe-alphabet"),
        pytest.param("whsec_", False, id="empty"),
        pytest.param("WHSEC_" + _whsec(24)[6:], False, id="prefix-case"),
    ],
)
async def test_a_secret_is_whsec_and_the_base64_of_24_to_64_bytes(
    db: Conn, secret: str, taken: bool
) -> None:
    if taken:
        await seed_schema(db, "https://crm.example/", secret=secret)
        return
    with pytest.raises(asyncpg.CheckViolationError, match="schemas_secret_check"):
        await seed_schema(db, "https://crm.example/", secret=secret)


# Two admins at once, each change fine alone: the second must not slip past the first's
# uncommitted row (READ COMMITTED, psql's default). Each case: what the first transaction does
# and leaves open, what the second runs meanwhile, and what the second's refusal names.
_HOOK = "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id) VALUES (12, '{event}', {s})"
RACES = {
    "schema moved, then a hook of it added": (
        "UPDATE queue_hooks.schemas SET domain_id = 2 WHERE id = {s}",
        _HOOK.format(event="leaving", s="{s}"),
        "schema {s} is in domain 2",
    ),
    "hook added, then its queue's type changed": (
        _HOOK.format(event="processing", s="{s}"),
        "UPDATE queue_hooks.queues SET type = 2 WHERE id = 12",
        'never fires event "processing"',
    ),
    "queue's type changed, then a hook added": (
        "UPDATE queue_hooks.queues SET type = 2 WHERE id = 12",
        _HOOK.format(event="processing", s="{s}"),
        r"queue 12 \(outbound IVR\) never fires",
    ),
    "hook added, then its queue moved": (
        _HOOK.format(event="leaving", s="{s}"),
        "UPDATE queue_hooks.queues SET domain_id = 2 WHERE id = 12",
        "calls schema {s}",
    ),
    "queue moved, then a hook added": (
        "UPDATE queue_hooks.queues SET domain_id = 2 WHERE id = 12",
        _HOOK.format(event="leaving", s="{s}"),
        "queue 12 is in domain 2",
    ),
    "queue's type changed, then a hook moved to it": (
        "UPDATE queue_hooks.queues SET type = 2 WHERE id = 12",
        "UPDATE queue_hooks.hooks SET queue_id = 12 WHERE queue_id = 13",
        r"queue 12 \(outbound IVR\) never fires",
    ),
}


@pytest.mark.parametrize("case", RACES)
async def test_two_concurrent_changes_cannot_leave_a_hook_that_breaks_the_rules(
    db: Conn, database: str, case: str
) -> None:
    first, second, says = RACES[case]
    await seed_queue(db, 12, 1)
    await seed_queue(db, 13, 1)
    schema = await seed_schema(db, "https://crm.example/hook")
    await seed_hook(db, 13, "processing", await seed_schema(db, "https://erp.example/hook"))
    other = await connect(database)
    try:
        async with db.transaction():
            await db.execute(first.format(s=schema))
            racing = asyncio.create_task(other.execute(second.format(s=schema)))
            await until(lambda: _waits_for_a_lock(db, other.get_server_pid()))
        with pytest.raises(asyncpg.CheckViolationError, match=says.format(s=schema)):
            await racing
    finally:
        await other.close()


async def _waits_for_a_lock(db: Conn, pid: int) -> bool:
    waiting = await db.fetchval(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
    )
    return bool(waiting)
