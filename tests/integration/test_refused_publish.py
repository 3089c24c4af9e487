"""A publish the broker refuses (basic.nack on a live connection) is made again, its event held
unacked, instead of the event being handed back: a hand-back calls the event's other hooks again
at each refusal (issue 14: a wait queue's leader killed in `make chaos`, 516 duplicates in 30 s).

RabbitMQ refuses here for real: a policy caps the wait queues at no message, overflow
`reject-publish`. A quorum queue takes one message past its limit, then nacks every publish
while it is over (as it does with no leader): the test puts one there first.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aio_pika
import pytest

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema
from tests.support.receiver import Receiver, fail_first
from worker.broker import topology as t

SERVICES = Path(__file__).resolve().parents[2] / "deploy/local/services.sh"
POLICY = "qh-test-refuse-waits"
DELAY = 3.0  # the wait queue's TTL, twice this, outlasts the test's window of refusals


def rabbitmqctl(*args: str) -> None:
    """On the test profile's node (its port offset comes with the environment)."""
    done = subprocess.run(
        [str(SERVICES), "rabbitmqctl", "test", "-q", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}"


@pytest.fixture
async def refusing_waits() -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Sets the policy; yields what lifts it (lifted at the end in any case)."""
    definition = '{"max-length": 0, "overflow": "reject-publish"}'
    await asyncio.to_thread(
        rabbitmqctl, "set_policy", "--apply-to", "queues", POLICY, r"^queue-hooks\.wait\.",
        definition,
    )  # fmt: skip
    lifted = False

    async def lift() -> None:
        nonlocal lifted
        if not lifted:
            lifted = True
            await asyncio.to_thread(rabbitmqctl, "clear_policy", POLICY)

    try:
        yield lift
    finally:
        await lift()


async def test_a_refused_retry_is_held_and_the_other_hook_is_called_once(
    db: Conn,
    platform: Platform,
    receiver: Receiver,
    start_worker: StartWorker,
    refusing_waits: Callable[[], Awaitable[None]],
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/healthy")))
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/failing")))
    receiver.on("/failing", fail_first(1))
    await start_worker(retry_delays=(DELAY,), quick_retries=0)
    wait_queue = t.wait_queue(DELAY)
    blocker = aio_pika.Message(b"over the limit: what refuses the rest")  # no expiry: it stays
    await platform.channel.default_exchange.publish(blocker, routing_key=wait_queue)
    sent = event(1, "joined")
    await platform.publish(sent)
    await receiver.wait_for(1, "/failing")
    await receiver.wait_for(1, "/healthy")
    # Room for refusals (0.5, 1, 2 s apart) and for a hand-back (1 s pause) to show up: before,
    # each refusal handed the event back and its redelivery called /healthy again.
    await asyncio.sleep(3.5)
    assert await platform.depth(wait_queue) == 1  # the blocker alone: the retry was refused
    assert len(receiver.at("/healthy")) == 1
    await (await platform.channel.get_queue(wait_queue)).purge()
    await refusing_waits()
    retried = await receiver.wait_for(2, "/failing", within=30)
    assert [r.attempt for r in retried] == [1, 2]
    assert {r.json["id"] for r in receiver.requests} == {sent["id"]}
    assert len(receiver.at("/healthy")) == 1  # once, in all
    assert await platform.depth(t.EVENTS_QUEUE) == 0 and await platform.depth(t.DEAD_QUEUE) == 0
