"""Failures: retry tiers held by the broker, dead letters with reasons (contract §5, §6)."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.receiver import Receiver, fail_first, hang, status
from tests.support.settings import TEST_DELAYS
from worker.broker import topology as t


async def test_a_failing_hook_is_retried_without_calling_the_other_again(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    good = await seed_schema(db, receiver.url("/good"))
    bad = await seed_schema(db, receiver.url("/bad"))
    await seed_hook(db, 1, "leaving", good)
    await seed_hook(db, 1, "leaving", bad)
    receiver.on("/bad", fail_first(2, 500))
    await start_worker()
    await platform.publish(event(1, "leaving"))
    bad_calls = await receiver.wait_for(3, "/bad")
    await asyncio.sleep(0.5)  # room for a wrong extra call to show up
    assert len(receiver.at("/good")) == 1
    assert len(receiver.at("/bad")) == 3
    assert len({r.webhook_id for r in bad_calls}) == 1
    assert len({r.body for r in bad_calls}) == 1
    assert [r.attempt for r in bad_calls] == [1, 2, 3]
    assert await platform.depth(t.DEAD_QUEUE) == 0


async def test_a_delivery_that_always_fails_is_exhausted_after_the_tiers(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    hook = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    receiver.on("/hook", status(500))
    await start_worker()
    sent = await platform.publish(event(1, "joined"))
    (dead,) = await platform.dead_letters(1)
    requests = receiver.at("/hook")
    assert len(requests) == len(TEST_DELAYS) + 1
    assert [r.attempt for r in requests] == [1, 2, 3]
    assert dead.headers[t.H_REASON] == "exhausted"
    assert dead.headers[t.H_ATTEMPTS] == 3
    assert dead.headers[t.H_HOOK_ID] == hook
    assert dead.headers[t.H_EVENT_ID] == orjson.loads(sent)["id"]
    assert "HTTP 500 from http://127.0.0.1" in str(dead.headers[t.H_ERROR])
    assert dead.body == requests[0].body  # the exact body that was POSTed


async def test_quick_retries_of_a_gateway_error_count_as_attempts(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    receiver.on("/hook", fail_first(2, 503))
    await start_worker(quick_retries=2, retry_delays=(30.0,))
    await platform.publish(event(1, "joined"))
    got = await receiver.wait_for(3)
    assert [r.attempt for r in got] == [1, 2, 3]
    await asyncio.sleep(0.3)
    assert await platform.depth(t.wait_queue(30.0)) == 0  # delivered in-process, no tier used


async def test_410_disables_the_hook_and_dead_letters_gone(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    hook = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    receiver.on("/hook", status(410))
    await start_worker()
    await platform.publish(event(1, "joined"))
    (dead,) = await platform.dead_letters(1)
    assert dead.headers[t.H_REASON] == "gone"
    assert dead.headers[t.H_ATTEMPTS] == 1

    async def disabled() -> bool:
        return bool(
            await db.fetchval("SELECT NOT enabled FROM queue_hooks.hooks WHERE id = $1", hook)
        )

    await until(disabled)


async def test_404_and_redirects_are_rejected_at_once(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/missing")))
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/moved")))
    receiver.on("/missing", status(404))
    receiver.on("/moved", status(301, {"Location": receiver.url("/elsewhere")}))
    await start_worker()
    await platform.publish(event(1, "joined"))
    dead = await platform.dead_letters(2)
    errors = sorted(str(d.headers[t.H_ERROR]) for d in dead)
    assert {d.headers[t.H_REASON] for d in dead} == {"rejected"}
    assert errors[0].startswith("HTTP 301 from") and errors[1].startswith("HTTP 404 from")
    assert receiver.at("/elsewhere") == []  # redirects are never followed
    assert len(receiver.requests) == 2


async def test_a_receiver_that_times_out_is_retried_then_exhausted(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url(), timeout_ms=200))
    receiver.on("/hook", hang(2.0))
    await start_worker(retry_delays=(0.2,))
    await platform.publish(event(1, "joined"))
    (dead,) = await platform.dead_letters(1, within=30)
    assert dead.headers[t.H_REASON] == "exhausted"
    assert dead.headers[t.H_ATTEMPTS] == 2
    assert "no response within 200 ms" in str(dead.headers[t.H_ERROR])


async def test_retry_after_lengthens_the_wait(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    receiver.on(
        "/hook",
        lambda _r, n: (
            web.Response(status=429, headers={"Retry-After": "1"})
            if n == 1
            else web.Response(status=204)
        ),
    )
    await start_worker(retry_delays=(0.3,))
    await platform.publish(event(1, "joined"))
    await receiver.wait_for(1)
    message = None
    async with asyncio.timeout(5):
        while message is None:  # the waiting message carries the lengthened expiration
            queue = await platform.channel.get_queue(t.wait_queue(0.3))
            message = await queue.get(fail=False, no_ack=False)
            await asyncio.sleep(0.02)
    assert message.expiration is not None and float(str(message.expiration)) == 0.6
    await message.nack(requeue=True)
    got = await receiver.wait_for(2)
    assert got[1].attempt == 2


async def test_a_retry_of_a_hook_disabled_meanwhile_is_not_sent(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    hook = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    receiver.on("/hook", status(500))
    await start_worker(retry_delays=(1.5,))
    await platform.publish(event(1, "joined"))
    await receiver.wait_for(1)
    await db.execute("UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1", hook)
    (dead,) = await platform.dead_letters(1)
    assert dead.headers[t.H_REASON] == "disabled"
    assert dead.headers[t.H_ATTEMPTS] == 1
    assert len(receiver.requests) == 1


async def test_a_schema_url_the_table_takes_but_no_client_can_use_never_stops_the_worker(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    """`http://h:99999/` passes the table's check (contract §2: url is http or https): such a
    row, seeded by SQL, once made the hook cache's load raise and every worker stop. Its
    deliveries now fail as an unreachable receiver's do, without a request; the rest go."""
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    bad = await seed_hook(db, 1, "leaving", await seed_schema(db, "http://127.0.0.1:99999/x"))
    await seed_schema(db, "http://[::1/x")  # no hook: read all the same
    await start_worker()
    sent = await platform.publish(event(1, "leaving"))
    await platform.publish(event(1, "joined"))
    (request,) = await receiver.wait_for(1)
    assert request.json["type"] == "joined"
    (letter,) = await platform.dead_letters(1)
    assert orjson.loads(letter.body)["id"] == orjson.loads(sent)["id"]
    assert letter.headers[t.H_REASON] == "exhausted"
    assert letter.headers[t.H_HOOK_ID] == bad
    assert letter.headers[t.H_ATTEMPTS] == 0  # no HTTP request was ever made
    assert "Port out of range" in str(letter.headers[t.H_ERROR])
