"""Admin changes by plain SQL take effect without a restart (contract §2)."""

from __future__ import annotations

from tests.support.cache import caught_up
from tests.support.fixtures import StartWorker
from tests.support.helpers import (
    Conn,
    Platform,
    delivered,
    event,
    seed_hook,
    seed_queue,
    seed_schema,
)
from tests.support.receiver import Receiver


async def test_insert_disable_enable_delete_by_sql(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/marker")))
    schema = await seed_schema(db, receiver.url("/crm"), name="CRM")
    worker = await start_worker()
    assert len(await delivered(platform, receiver, "/crm")) == 0

    await db.execute(
        "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id) VALUES (1, 'joined', $1)",
        schema,
    )
    await caught_up(worker, db)
    assert len(await delivered(platform, receiver, "/crm")) == 1

    await db.execute("UPDATE queue_hooks.hooks SET enabled = false WHERE schema_id = $1", schema)
    await caught_up(worker, db)
    assert len(await delivered(platform, receiver, "/crm")) == 0

    await db.execute("UPDATE queue_hooks.hooks SET enabled = true WHERE schema_id = $1", schema)
    await caught_up(worker, db)
    assert len(await delivered(platform, receiver, "/crm")) == 1

    await db.execute(
        "UPDATE queue_hooks.schemas SET url = $1 WHERE id = $2", receiver.url("/crm2"), schema
    )
    await caught_up(worker, db)
    assert len(await delivered(platform, receiver, "/crm2")) == 1

    await db.execute("DELETE FROM queue_hooks.hooks WHERE schema_id = $1", schema)
    await caught_up(worker, db)
    assert len(await delivered(platform, receiver, "/crm2")) == 0


async def test_queue_variables_changed_by_sql_are_delivered(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1, variables={"region": "eu"})
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    worker = await start_worker()
    await platform.publish(event(1, "joined"))
    (first,) = await receiver.wait_for(1)
    assert first.json["data"]["region"] == "eu"  # type: ignore[index]
    await db.execute(
        """UPDATE queue_hooks.queues SET variables = '{"region": "us"}' WHERE id = 1"""
    )
    await caught_up(worker, db)
    await platform.publish(event(1, "joined"))
    got = await receiver.wait_for(2)
    assert got[1].json["data"]["region"] == "us"  # type: ignore[index]
