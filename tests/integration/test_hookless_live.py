"""An event no hook wants is settled synchronously, with no task (worker/broker/consumers.py,
`Pipeline.on_event`), on the real RabbitMQ and PostgreSQL: acked, counted, and nothing else
changes. An invalid event still takes the awaited path to its dead letter, a hook added while
events flow gets the events after its reload, and a stop leaves nothing unacked behind."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from tests.support.cache import caught_up
from tests.support.fixtures import StartWorker
from tests.support.helpers import (
    Conn,
    Platform,
    event,
    holds,
    seed_hook,
    seed_queue,
    seed_schema,
)
from tests.support.receiver import Received, Receiver
from worker.app import Worker
from worker.broker import EVENTS_QUEUE
from worker.broker import topology as t


def consumed(worker: Worker, event_name: str, outcome: str) -> float:
    return worker.metrics._event(event_name, outcome)._value.get()  # type: ignore[no-any-return]


async def stopped(worker: Worker) -> None:
    """Stopped as SIGTERM stops it: drained, its acks written, its connection closed."""
    worker.stop()
    await holds(lambda: not worker.broker.connected, within=30)


async def test_hookless_events_are_acked_without_a_task(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker,
    tasks: list[int],
) -> None:  # fmt: skip
    await seed_queue(db, 1, 1)
    await seed_queue(db, 2, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    worker = await start_worker()
    for _ in range(300):
        await platform.publish(event(2, "joined"))
    marker = orjson.loads(await platform.publish(event(1, "joined")))["id"]
    (request,) = await receiver.wait_for(1)
    assert request.json["id"] == marker
    await holds(lambda: consumed(worker, "joined", "no_hooks") == 300)
    await stopped(worker)
    assert len(tasks) == 1  # the marker's task, no other
    assert await platform.depth(EVENTS_QUEUE) == 0  # every one acked: none came back


async def test_an_invalid_event_among_hookless_ones_is_still_dead_lettered(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker,
    tasks: list[int],
) -> None:  # fmt: skip
    await seed_queue(db, 2, 1)
    worker = await start_worker()
    bad = orjson.dumps(event(2, "joined", attempt_id="abc"))
    for n in range(50):
        if n == 25:
            await platform.publish(bad, routing_key="queue.2.joined")
        await platform.publish(event(2, "joined"))
    (dead,) = await platform.dead_letters(1)
    assert dead.body == bad  # byte for byte
    assert dead.headers[t.H_REASON] == "invalid"
    assert 'attempt_id: "abc" is not an integer' in str(dead.headers[t.H_ERROR])
    await holds(lambda: consumed(worker, "joined", "no_hooks") == 50)
    await stopped(worker)
    assert len(tasks) == 1  # the invalid one's task, no other
    assert await platform.depth(EVENTS_QUEUE) == 0


async def test_a_hook_added_while_events_flow_gets_them_after_its_reload(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 2, 1)
    schema = await seed_schema(db, receiver.url())
    worker = await start_worker()
    flowing = True
    sent: list[str] = []

    async def flow() -> None:
        while flowing:
            sent.append(orjson.loads(await platform.publish(event(2, "joined")))["id"])
            await asyncio.sleep(0.002)

    publisher = asyncio.create_task(flow())
    await holds(lambda: consumed(worker, "joined", "no_hooks") >= 50)
    await db.execute(
        "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id) VALUES (2, 'joined', $1)",
        schema,
    )
    await caught_up(worker, db)
    after = len(sent)
    await holds(lambda: len(sent) >= after + 30)
    flowing = False
    await publisher
    await receiver.wait_for(len(sent) - after)
    got = {r.json["id"] for r in receiver.requests}
    assert set(sent[after:]) <= got  # every event published after the reload was delivered
    assert got <= set(sent)
    await stopped(worker)
    assert await platform.depth(EVENTS_QUEUE) == 0


async def test_a_stop_drains_deliveries_and_leaves_no_hookless_event_unacked(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_queue(db, 2, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    gate = asyncio.Event()

    async def held(_r: Received, _n: int) -> web.StreamResponse:
        await gate.wait()
        return web.Response(status=204)

    receiver.on("/hook", held)
    worker = await start_worker(shutdown_grace=30)
    hooked = []
    for n in range(200):
        if n % 20 == 0:
            hooked.append(orjson.loads(await platform.publish(event(1, "joined")))["id"])
        await platform.publish(event(2, "joined"))
    await receiver.wait_for(len(hooked))  # each held by the receiver
    await holds(lambda: consumed(worker, "joined", "no_hooks") == 200)
    assert len(worker.broker.in_flight) == len(hooked)  # the hookless ones are settled
    worker.stop()
    await holds(lambda: not worker.consuming)  # draining now
    gate.set()
    await holds(lambda: not worker.broker.connected, within=30)
    assert not worker.broker.in_flight
    assert sorted(str(r.json["id"]) for r in receiver.requests) == sorted(
        hooked
    )  # none cut, none again
    assert await platform.depth(EVENTS_QUEUE) == 0
