"""A delivery known to be put off (its schema's circuit open) is settled with no task and no
coroutine (`Admission.put_off_now`, the wait batch's own futures, `Settler._when_done`), on the
real RabbitMQ and PostgreSQL: its event is acked only once the broker holds its wait, the wait
carries it whole, and a stop loses none of them."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, holds, seed_hook, seed_queue, seed_schema
from tests.support.receiver import Received, Receiver
from worker import codec
from worker.app import Worker
from worker.broker import EVENTS_QUEUE
from worker.broker import topology as t

# Long enough that nothing comes back from a wait queue while a test looks.
TIERS = (30.0,)


def deliveries(worker: Worker, outcome: str) -> float:
    labels = {"outcome": outcome, "reason": ""}
    return worker.metrics.registry.get_sample_value("queue_hooks_deliveries_total", labels) or 0.0


async def failing(_r: Received, _n: int) -> web.StreamResponse:
    return web.Response(status=500)


async def opened(db: Conn, platform: Platform, receiver: Receiver, start: StartWorker) -> Worker:
    """A worker whose only schema's circuit opened on the first event (a 500)."""
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/down")))
    receiver.on("/down", failing)
    worker = await start(retry_delays=TIERS, quick_retries=0, circuit_failures=1, circuit_open=600)
    await platform.publish(event(1, "joined"))
    await holds(lambda: deliveries(worker, "retried") == 1)  # its retry is held: circuit open
    return worker


async def waiting(platform: Platform) -> list[codec.Inbound]:
    """Every delivery the wait queue holds (taken), each batch unpacked."""
    queue = await platform.channel.get_queue(t.wait_queue(TIERS[0]))
    found: list[codec.Inbound] = []
    while (message := await queue.get(fail=False)) is not None:
        await message.ack()
        found += codec.inbounds(
            message.body, dict(message.headers), message.content_type, None, False, "",
            batches=True,
        )  # fmt: skip
    return found


async def test_deliveries_put_off_make_no_task_and_are_acked_once_their_waits_are_held(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker,
    tasks: list[int],
) -> None:  # fmt: skip
    worker = await opened(db, platform, receiver, start_worker)
    sent = [orjson.loads(await platform.publish(event(1, "joined")))["id"] for _ in range(200)]
    await holds(lambda: deliveries(worker, "retried") == 201)  # every wait confirmed
    assert deliveries(worker, "deferred") == 200
    assert len(receiver.at("/down")) == 1  # the first event's request; none since
    worker.stop()
    await holds(lambda: not worker.broker.connected, within=30)
    assert len(tasks) == 1  # the first event's task: none for the 200 put off
    assert await platform.depth(EVENTS_QUEUE) == 0  # every one acked: none came back
    held = await waiting(platform)
    put_off = [orjson.loads(i.body)["id"] for i in held if i.headers.get(t.H_DEFERRED)]
    assert sorted(put_off) == sorted(sent)  # each once, its payload whole
    assert all(i.headers[t.H_ATTEMPTS] == 0 for i in held if i.headers.get(t.H_DEFERRED))


async def test_a_stop_with_deliveries_being_put_off_loses_none(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    worker = await opened(db, platform, receiver, start_worker)
    bodies = await asyncio.gather(*(platform.publish(event(1, "joined")) for _ in range(2000)))
    sent = [orjson.loads(body)["id"] for body in bodies]
    await holds(lambda: deliveries(worker, "deferred") >= 50)
    worker.stop()  # while the rest are being put off
    await holds(lambda: not worker.broker.connected, within=30)
    assert not worker.broker.in_flight
    held = {orjson.loads(i.body)["id"] for i in await waiting(platform)}
    queue = await platform.channel.get_queue(EVENTS_QUEUE)
    back: set[str] = set()
    while (message := await queue.get(fail=False)) is not None:
        await message.ack()
        back.add(orjson.loads(message.body)["id"])
    assert set(sent) <= held | back  # each is in a wait, or back in the events queue
    assert held & set(sent)  # some were put off before the stop
