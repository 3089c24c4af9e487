"""Faults of a cluster, for real, mid-stream, with two workers (issue 14): the cluster profile
of deploy/local/services.sh (three RabbitMQ nodes, a PostgreSQL primary and standby).

Each worker is given the nodes in another order, so they start on different nodes. Every case
ends with the ledger of test_faults.finish: each (event, hook) delivered at least once or
dead-lettered with a reason, nothing lost, duplicates at most what was in flight.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from tests.chaos import test_api_outage as api_outage
from tests.chaos.harness import Ledger, Services, amqp, queue_state
from tests.chaos.scenario import EVENTS, Scenario
from tests.chaos.test_faults import delivered_at_least, fail_once_in, finish
from tests.support.helpers import until
from tests.support.processes import api_process
from worker.broker import topology as t
from worker.store import connect

pytestmark = pytest.mark.skipif(
    os.environ.get("QH_CHAOS_PROFILE") != "cluster",
    reason="needs the cluster profile: run `make chaos` (or make cluster-check)",
)
NODES = ("rabbit1", "rabbit2", "rabbit3")
CASE_EVENTS = min(EVENTS, 1500)


def nodes_from(sc: Scenario, first: str) -> str:
    """The cluster's AMQP URLs, starting at node `first` (then the others, in order)."""
    urls = dict(zip(NODES, sc.services.amqp_url.split(","), strict=True))
    start = NODES.index(first)
    order = NODES[start:] + NODES[:start]
    return ",".join(urls[n] for n in order)


def other(node: str, step: int = 1) -> str:
    return NODES[(NODES.index(node) + step) % len(NODES)]


async def two_workers(sc: Scenario, first: str, **env: str) -> None:
    """Worker a starts on node `first`, worker b on the next one."""
    for name, node in (("a", first), ("b", other(first))):
        sc.worker(name, QUEUE_HOOKS_AMQP_URL=nodes_from(sc, node), **env)
    for w in sc.workers:
        await w.wait_log("worker consuming")


async def declare_on(sc: Scenario, node: str) -> None:
    """Our quorum queues, declared through `node`: RabbitMQ places a new quorum queue's
    leader on the node it was declared on, so the case knows where the leaders are."""
    url, dead_on = nodes_from(sc, node).split(",")[:2]
    for spec in t.queue_specs(sc.delay_seconds, 3):
        # The classic dead-letter queue on another node, so it stays up when `node` dies.
        async with amqp(dead_on if spec.name == t.DEAD_QUEUE else url) as channel:
            await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)


async def leader(sc: Scenario, queue: str) -> str:
    return await sc.services.ask("leader", queue)


async def all_nodes_back(sc: Scenario) -> None:
    """Every node running and a member of the events queue again: the next case (and the
    next fault) starts from a whole cluster."""
    await sc.services.start()

    async def whole() -> bool:
        members = await sc.services.ask("members", t.EVENTS_QUEUE)
        return len(members.split()) == 3

    await until(whole, 120)


async def test_events_leader_killed(scenario: Scenario) -> None:
    sc = scenario
    await declare_on(sc, "rabbit2")
    killed = await leader(sc, t.EVENTS_QUEUE)
    await two_workers(sc, killed)  # worker a is on the leader's node
    ledger = await sc.publish(CASE_EVENTS)
    await delivered_at_least(sc.receiver, len(ledger.expected) // 4)
    await sc.services.node("kill", killed)
    assert sc.receiver.delivered < len(ledger.expected), "the stream ended before the kill"
    await sc.workers[0].wait_log("broker connection lost")
    await finish(sc, ledger, "SIGKILL events leader", sc.in_flight_bound(2), f"kill {killed}")
    await all_nodes_back(sc)


async def test_wait_queue_leader_killed_while_retries_wait(scenario: Scenario) -> None:
    sc = scenario
    sc.delays = "3s,6s"  # long enough to kill the leader while retries wait in the first tier
    await sc.seed()  # the wait queues of these delays
    sc.receiver.answer = fail_once_in(4)
    first_tier = t.wait_queue(sc.delay_seconds[0])
    await declare_on(sc, "rabbit3")
    killed = await leader(sc, first_tier)  # asked before: rabbitmqctl takes a second or two
    await two_workers(sc, killed)
    ledger = await sc.publish(CASE_EVENTS // 2)
    waited: list[int] = []

    async def waiting() -> bool:
        waited.append((await queue_state(sc.services.amqp_url, first_tier))[0])
        return waited[-1] > 0

    await until(waiting, 60)
    await sc.services.node("kill", killed)
    await finish(
        sc, ledger, "SIGKILL wait-queue leader", sc.in_flight_bound(2),
        f"kill {killed}, {waited[-1]} waiting",
    )  # fmt: skip
    assert sc.receiver.failed > 0 and ledger.dead == {}
    await all_nodes_back(sc)


async def test_rolling_restart_of_all_three(scenario: Scenario) -> None:
    sc = scenario
    sc.receiver.delay = 0.05
    await two_workers(sc, "rabbit2")
    share = CASE_EVENTS // 4
    ledgers = [await sc.publish(share)]
    for node in NODES:  # events keep coming while each node is down and coming back
        await sc.services.node("stop", node)
        ledgers.append(await sc.publish(share))
        await sc.services.node("start", node)
        await all_nodes_back(sc)
    ledger = merge(ledgers)
    await finish(sc, ledger, "rolling restart", sc.in_flight_bound(6), "stop+start x3")
    assert ledger.dead == {}


async def test_postgres_primary_killed_standby_promoted(scenario: Scenario) -> None:
    sc = scenario
    await two_workers(sc, "rabbit3")
    first = await sc.publish(CASE_EVENTS)
    await delivered_at_least(sc.receiver, len(first.expected) // 4)
    old = await sc.services.ask("pg-primary")
    await sc.services.node("kill", old)
    for w in sc.workers:
        await w.wait_log("database unreachable")
    await sc.services.ask("pg-promote")
    await first.settle(sc.services.amqp_url, sc.receiver)

    # A hook disabled on the new primary: events published 2 s after the commit (contract
    # §2) are not delivered to it.
    off = sc.hooks["leaving"][1]
    conn = await connect(sc.services.database_url)
    try:
        await conn.execute("UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1", off)
    finally:
        await conn.close()
    await asyncio.sleep(2)  # the contract's own delay, not a guess at our speed
    sc.hooks = {"joined": sc.hooks["joined"], "leaving": sc.hooks["leaving"][:1]}
    second = await sc.publish(CASE_EVENTS // 2)
    ledger = merge([first, second])
    await finish(sc, ledger, "PG primary killed, promoted", sc.in_flight_bound(2), f"kill {old}")
    after = {f"{wid.split(':')[0]}:{off}" for wid in second.expected}
    late = after & sc.receiver.ok.keys()
    assert not late, f"{len(late)} deliveries to hook {off} after it was disabled"
    await sc.services.node("start", old)  # back as the new primary's standby


async def test_broker_majority_lost_then_back(scenario: Scenario) -> None:
    sc = scenario
    sc.receiver.delay = 0.05
    await two_workers(sc, "rabbit1")
    ledger = await sc.publish(CASE_EVENTS)
    await delivered_at_least(sc.receiver, len(ledger.expected) // 4)
    down = ("rabbit1", "rabbit2")
    for node in down:
        await sc.services.node("kill", node)
    # The workers stop taking work: no 2xx for a while once the majority is gone.
    settled_at = sc.receiver.delivered

    async def stalled() -> bool:
        before = sc.receiver.delivered
        await asyncio.sleep(1.5)
        return sc.receiver.delivered == before

    await until(stalled, 60)
    assert sc.receiver.delivered < len(ledger.expected), "the stream ended before the fault"
    for node in down:
        await sc.services.node("start", node)
    await all_nodes_back(sc)
    await finish(
        sc, ledger, "majority lost, back", sc.in_flight_bound(2),
        f"kill {' '.join(down)} at {settled_at}",
    )  # fmt: skip


def merge(ledgers: list[Ledger]) -> Ledger:
    expected: set[str] = set()
    for one in ledgers:
        expected |= one.expected
    return Ledger(expected, sum(one.events for one in ledgers))


async def test_api_follows_the_new_primary(services: Services, database: str) -> None:
    """`queue-hooks api` on the multi-host URL: the primary SIGKILLed, a request in the gap
    is the 503 error object (no traceback), and once the standby is promoted the pool's new
    connections reach it: ready again, and a PATCH is written there."""
    hook, token = await api_outage.seed(database)
    one = api_outage.HOOK.format(hook)
    async with (
        api_process(database) as url,
        httpx.AsyncClient(base_url=url, headers={"X-Webitel-Access": token}, timeout=10) as c,
    ):
        assert (await c.get(one)).status_code == 200
        old = await services.ask("pg-primary")
        try:
            await services.node("kill", old)
            api_outage.is_unavailable(await c.get(one))
            assert (await c.get("/readyz")).status_code == 503
            await services.ask("pg-promote")

            async def ready() -> bool:
                return (await c.get("/readyz")).status_code == 200

            await until(ready, 30)
            assert await services.ask("pg-primary") != old
            patched = await c.patch(one, json={"enabled": False})
            assert patched.status_code == 200, patched.text
            assert (await c.get(one)).json()["enabled"] is False
        finally:
            await services.start()  # the old primary comes back as the new one's standby
