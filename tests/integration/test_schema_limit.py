"""A schema at its limit of requests in flight: what exceeds it waits its turn, or is deferred
through a wait tier once the schema stalls, never counting as an attempt; another schema goes
on meanwhile."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.receiver import Behaviour, Received, Receiver
from worker.broker import topology as t


def counting(hold: float, peak: list[int]) -> Behaviour:
    """Answers 204 after `hold` seconds; peak[0] is the most requests it held at once."""
    current = 0

    async def slow(_r: Received, _n: int) -> web.StreamResponse:
        nonlocal current
        current += 1
        peak[0] = max(peak[0], current)
        try:
            await asyncio.sleep(hold)
            return web.Response(status=204)
        finally:
            current -= 1

    return slow


@pytest.mark.parametrize("stall", [5.0, 0.05])
async def test_a_schema_never_has_more_than_its_limit_in_flight_and_a_turn_is_no_attempt(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker, stall: float
) -> None:
    """With 5 s the extra deliveries wait their turn (the receiver answers within 0.4 s);
    with 0.05 s the schema counts as stalled and they are deferred through a wait tier."""
    await seed_queue(db, 1, 1)
    await seed_queue(db, 2, 1)
    await seed_hook(db, 1, "leaving", await seed_schema(db, receiver.url("/slow")))
    await seed_hook(db, 2, "leaving", await seed_schema(db, receiver.url("/fast")))
    peak = [0]
    receiver.on("/slow", counting(0.4, peak))
    worker = await start_worker(schema_concurrency=2, schema_stall=stall)
    for _ in range(5):
        await platform.publish(event(1, "leaving"))
    await platform.publish(event(2, "leaving"))
    await receiver.wait_for(1, "/fast")  # not held up by the slow schema's backlog
    slow = await receiver.wait_for(5, "/slow", within=30)
    assert peak[0] == 2
    assert len({r.webhook_id for r in slow}) == 5  # each delivered once
    assert [r.attempt for r in slow] == [1] * 5  # neither waiting nor a deferral is an attempt
    assert await platform.depth(t.DEAD_QUEUE) == 0
    deferred = worker.metrics.registry.get_sample_value(
        "queue_hooks_deliveries_total", {"outcome": "deferred", "reason": ""}
    )
    assert (deferred or 0) > 0 if stall < 0.4 else not deferred


async def test_a_deferred_delivery_of_a_disabled_hook_dead_letters_with_no_attempts(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    hook = await seed_hook(db, 1, "leaving", await seed_schema(db, receiver.url("/slow")))
    receiver.on("/slow", counting(2.0, [0]))
    await start_worker(schema_concurrency=1, retry_delays=(1.0,), schema_stall=0.1)
    await platform.publish(event(1, "leaving"))
    await receiver.wait_for(1, "/slow")
    await platform.publish(event(1, "leaving"))  # deferred: the one slot is taken

    async def deferred() -> bool:
        return await platform.depth(t.wait_queue(1.0)) == 1

    await until(deferred, within=10)
    await db.execute("UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1", hook)
    (dead,) = await platform.dead_letters(1)
    assert dead.headers[t.H_REASON] == "disabled"
    assert dead.headers[t.H_ATTEMPTS] == 0
    assert dead.headers[t.H_DEFERRED] == 1
    assert dead.headers[t.H_TIER] == 0
    assert len(receiver.at("/slow")) == 1
