"""The cache reads again only what a change touched; these are the changes that cross tables."""

from __future__ import annotations

from tests.support.cache import caught_up
from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, delivered, seed_hook, seed_queue, seed_schema
from tests.support.receiver import Receiver


async def test_a_hook_of_a_schema_created_while_running_is_called(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/marker")))
    worker = await start_worker()
    schema = await seed_schema(db, receiver.url("/new"))
    await caught_up(worker, db)  # the schema alone is read, with no hook to use it yet
    await seed_hook(db, 1, "joined", schema)
    await caught_up(worker, db)
    assert len(await delivered(platform, receiver, "/new")) == 1


async def test_deleting_a_queue_takes_its_hooks_out_of_the_cache(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_queue(db, 2, 1)
    marker = await seed_schema(db, receiver.url("/marker"))
    await seed_hook(db, 1, "joined", marker)
    hook = await seed_hook(db, 2, "joined", await seed_schema(db, receiver.url("/two")))
    worker = await start_worker()
    assert worker.cache.hook(hook) is not None
    await db.execute("DELETE FROM queue_hooks.queues WHERE id = 2")
    await caught_up(worker, db)
    assert worker.cache.hook(hook) is None
    assert worker.cache.hooks_for(2, "joined") == ()
    assert len(await delivered(platform, receiver, "/marker")) == 1
