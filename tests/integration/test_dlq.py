"""`queue-hooks dlq`: list, show, replay, purge against the real broker (contract §6)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.support.cli import NO_DOTENV, queue_hooks
from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.receiver import Receiver, status
from tests.support.settings import TEST_DELAYS, make_settings
from worker.broker import Broker
from worker.broker import topology as t
from worker.cli.dlq import Filter, read_letters, replay
from worker.codec import Delivery


@pytest.fixture
async def broker(platform: Platform) -> AsyncIterator[Broker]:
    """The worker's own broker code, to leave dead letters exactly as the worker does."""
    settings = make_settings()
    b = Broker(settings.amqp_url, settings.exchange, TEST_DELAYS, prefetch=1)
    await b.connect(attempts=3)
    try:
        yield b
    finally:
        await b.close()


async def dead_delivery(
    broker: Broker, hook_id: int, reason: str = "exhausted", attempts: int = 3
) -> Delivery:
    event_id = str(uuid.uuid4())
    body = orjson.dumps({"type": "joined", "id": event_id, "hook_id": hook_id, "data": {}})
    job = Delivery(hook_id, event_id, "joined", 1, body, attempts=attempts, tier=len(TEST_DELAYS))
    headers = job.headers()
    headers[t.H_REASON] = reason
    headers[t.H_ERROR] = f"HTTP 500 from http://127.0.0.1/{hook_id}"
    await broker.publish_dead(job.body, headers, "application/json")
    return job


async def dead_invalid(broker: Broker, body: bytes, routing_key: str | None = None) -> None:
    """As the pipeline leaves an invalid event: original bytes, no hook."""
    headers: dict[str, object] = {t.H_REASON: "invalid", t.H_ERROR: "bad", t.H_ATTEMPTS: 0}
    with contextlib.suppress(orjson.JSONDecodeError, KeyError):
        headers[t.H_EVENT_ID] = str(orjson.loads(body)["id"])
    if routing_key:
        headers[t.H_ROUTING_KEY] = routing_key
    await broker.publish_dead(body, headers, "application/json")


async def hooks(db: Conn, count: int) -> list[int]:
    """Hooks on `joined` of queue 1, the event and queue `dead_delivery` says its letters are
    for (a replay keeps a letter whose hook is now for another: `test_replay_keeps_...`)."""
    await seed_queue(db, 1, 0)
    return [
        await seed_hook(db, 1, "joined", await seed_schema(db, f"http://127.0.0.1:9/hook/{i}"))
        for i in range(count)
    ]


async def listed(**filters: Any) -> list[dict[str, Any]]:
    args = [f"--{k.replace('_', '-')}={v}" for k, v in filters.items()]
    result = await queue_hooks("dlq", "list", "--json", *args)
    assert result.code == 0, result.err
    letters: list[dict[str, Any]] = orjson.loads(result.out)
    return letters


async def retry_messages(platform: Platform) -> list[Any]:
    queue = await platform.channel.get_queue(t.RETRY_QUEUE)
    got = []
    while (message := await queue.get(fail=False)) is not None:
        await message.ack()
        got.append(message)
    return got


async def test_list_reads_without_consuming_and_keeps_the_order(
    platform: Platform, broker: Broker
) -> None:
    jobs = [await dead_delivery(broker, hook, reason) for hook, reason in
            [(1, "exhausted"), (2, "rejected"), (1, "gone"), (3, "rejected")]]  # fmt: skip
    await dead_invalid(broker, b'{"id": "not-a-uuid", "event": 5}', "queue.1.joined")

    first = await listed()
    assert [x["event_id"] for x in first] == [j.event_id for j in jobs] + ["not-a-uuid"]
    assert [x["position"] for x in first] == [1, 2, 3, 4, 5]
    assert first[0] | {"age_seconds": 0} == {
        "position": 1, "reason": "exhausted", "error": "HTTP 500 from http://127.0.0.1/1",
        "event_id": jobs[0].event_id, "event": "joined", "queue_id": 1, "hook_id": 1,
        "attempts": 3, "dead_at": first[0]["dead_at"], "age_seconds": 0,
    }  # fmt: skip
    assert first[0]["dead_at"] is not None and first[0]["age_seconds"] < 600
    assert first[4]["reason"] == "invalid" and first[4]["hook_id"] is None
    assert await platform.depth(t.DEAD_QUEUE) == 5  # nothing taken
    again = await listed()
    assert [(x["position"], x["event_id"]) for x in again] == [
        (x["position"], x["event_id"]) for x in first
    ]

    rejected = await listed(reason="rejected")
    assert [(x["position"], x["hook_id"]) for x in rejected] == [(2, 2), (4, 3)]
    assert [x["position"] for x in await listed(hook=1)] == [1, 3]
    assert [x["position"] for x in await listed(limit=2)] == [1, 2]

    table = await queue_hooks("dlq", "list")
    assert table.code == 0
    assert "HTTP 500 from http://127.0.0.1/2" in table.out.splitlines()[2]
    assert "5 shown; 5 in queue-hooks.dead" in table.err
    assert await platform.depth(t.DEAD_QUEUE) == 5


async def test_an_event_id_with_control_characters_stays_on_its_line(
    platform: Platform, broker: Broker
) -> None:
    # An invalid event's id is whatever the publisher sent: a line break made a fake row,
    # an escape sequence or a bidi override acted on the terminal of whoever listed.
    await dead_invalid(broker, orjson.dumps({"id": "evil\nfake row\u202e\x1b[2J"}))
    table = await queue_hooks("dlq", "list")
    assert len(table.out.splitlines()) == 2, table.out
    assert "evil\\nfake row\\u202e\\x1b[2J" in table.out
    shown = (await queue_hooks("dlq", "show", "1")).out
    assert "  queue-hooks-event-id: evil\\nfake row\\u202e\\x1b[2J\n" in shown


async def test_without_a_dead_queue_the_commands_say_so(platform: Platform) -> None:
    for args in (["list"], ["show", "1"], ["replay"], ["purge", "--yes"]):
        result = await queue_hooks("dlq", *args)
        assert result.code == 1
        assert result.err == "error: there is no queue queue-hooks.dead (has a worker ever run?)\n"


async def test_show_prints_one_whole(platform: Platform, broker: Broker) -> None:
    await dead_delivery(broker, 1)
    job = await dead_delivery(broker, 7, "rejected", attempts=1)
    shown = await queue_hooks("dlq", "show", "2")
    assert shown.code == 0, shown.err
    assert "dead letter #2 of 2" in shown.out
    assert "reason:       rejected" in shown.out
    assert f"queue-hooks-event-id: {job.event_id}" in shown.out
    assert '"hook_id": 7' in shown.out  # the body, pretty-printed
    raw = await queue_hooks("dlq", "show", "2", "--raw")
    assert raw.out.encode() == job.body
    missing = await queue_hooks("dlq", "show", "3")
    assert missing.code == 1
    assert missing.err.strip() == "error: there is no dead letter #3 (2 in queue-hooks.dead)"
    assert await platform.depth(t.DEAD_QUEUE) == 2


async def test_replay_sends_failed_deliveries_back_for_a_fresh_series(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    flaky = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/flaky")))
    other = await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/other")))
    receiver.on("/flaky", status(500))
    receiver.on("/other", status(404))
    await start_worker()
    await platform.publish(event(1, "joined"))
    await until(lambda: _depth_is(platform, t.DEAD_QUEUE, 2), within=20)
    first = receiver.at("/flaky")
    assert len(first) == len(TEST_DELAYS) + 1

    # The receiver is fixed; the other hook was disabled meanwhile.
    receiver.on("/flaky", status(204))
    await db.execute("UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1", other)
    result = await queue_hooks("dlq", "replay")
    assert result.code == 0, result.err
    assert f"hook {other} is disabled" in result.out
    assert "replayed 1 dead letter(s); 1 kept" in result.out

    (again,) = (await receiver.wait_for(len(first) + 1, "/flaky"))[len(first) :]
    assert again.webhook_id == first[0].webhook_id
    assert again.body == first[0].body
    assert again.attempt == len(first) + 1  # attempt numbers go on counting this delivery
    (left,) = await listed()
    assert left["hook_id"] == other and left["reason"] == "rejected"
    assert len(receiver.at("/other")) == 1  # never called again

    await db.execute("DELETE FROM queue_hooks.hooks WHERE id = $1", other)
    result = await queue_hooks("dlq", "replay", "--hook", str(other))
    assert f"hook {other} no longer exists" in result.out
    assert "replayed 0 dead letter(s)" in result.out
    assert await platform.depth(t.DEAD_QUEUE) == 1
    assert flaky != other


async def test_replay_keeps_a_letter_whose_hook_is_now_for_another_event_or_queue(
    db: Conn, platform: Platform, broker: Broker
) -> None:
    h1, h2, h3 = await hooks(db, 3)
    await seed_queue(db, 2, 0)
    for hook in (h1, h2, h3):
        await dead_delivery(broker, hook)  # each made for `joined` of queue 1
    await db.execute("UPDATE queue_hooks.hooks SET event = 'leaving' WHERE id = $1", h1)
    await db.execute("UPDATE queue_hooks.hooks SET queue_id = 2 WHERE id = $1", h2)
    result = await queue_hooks("dlq", "replay")
    assert result.code == 0, result.err
    assert f"kept #1: hook {h1} is now for leaving of queue 1, not joined of queue 1" in result.out
    assert f"kept #2: hook {h2} is now for joined of queue 2, not joined of queue 1" in result.out
    assert "replayed 1 dead letter(s); 2 kept" in result.out
    assert await platform.depth(t.DEAD_QUEUE) == 2
    (back,) = await retry_messages(platform)
    assert back.headers[t.H_HOOK_ID] == h3


async def _depth_is(platform: Platform, queue: str, count: int) -> bool:
    return await platform.depth(queue) == count


async def test_replay_filters_limit_and_dry_run(
    db: Conn, platform: Platform, broker: Broker
) -> None:
    h1, h2 = await hooks(db, 2)
    jobs = [await dead_delivery(broker, h) for h in (h1, h2, h1, h2, h1)]
    settings = make_settings()

    dry = await replay(settings, Filter(), dry_run=True)
    assert dry.replayed == 5
    assert await platform.depth(t.DEAD_QUEUE) == 5 and await platform.depth(t.RETRY_QUEUE) == 0

    one = await replay(settings, Filter(event_id=jobs[3].event_id))
    assert one.replayed == 1
    (moved,) = await retry_messages(platform)
    assert moved.body == jobs[3].body
    ours = {k: v for k, v in moved.headers.items() if k.startswith("queue-hooks-")}
    assert ours == {
        t.H_HOOK_ID: h2, t.H_EVENT_ID: jobs[3].event_id, t.H_EVENT: "joined", t.H_QUEUE_ID: 1,
        t.H_ATTEMPTS: 3, t.H_TIER: 0,
    }  # fmt: skip

    two = await replay(settings, Filter(hook_id=h1), limit=2)
    assert two.replayed == 2
    assert [m.body for m in await retry_messages(platform)] == [jobs[0].body, jobs[2].body]
    # What stayed keeps its order.
    left, depth = await read_letters(settings, Filter())
    assert [x.event_id for x in left] == [jobs[1].event_id, jobs[4].event_id]
    assert depth == 2


async def test_count_is_the_contracts_word_for_the_limit(
    db: Conn, platform: Platform, broker: Broker
) -> None:
    # Contract §6: "filters by reason, hook, count"; `--count` was "No such option".
    (hook,) = await hooks(db, 1)
    jobs = [await dead_delivery(broker, hook) for _ in range(3)]
    assert [x["event_id"] for x in await listed(count=2)] == [j.event_id for j in jobs[:2]]
    ran = await queue_hooks("dlq", "replay", "--count", "1")
    assert "replayed 1 dead letter(s)" in ran.ok
    assert await platform.depth(t.DEAD_QUEUE) == 2


async def test_an_invalid_event_without_a_key_goes_back_whatever_its_event(
    platform: Platform, broker: Broker
) -> None:
    # Its key is made from its body: 'queue.1.xxx...' past 255 bytes was a traceback.
    body = orjson.dumps({"id": "1", "event": "x" * 300, "queue_id": 1})
    await dead_invalid(broker, body)
    ran = await queue_hooks("dlq", "replay", "--include-invalid")
    assert "replayed 1 dead letter(s)" in ran.ok
    assert await platform.depth(t.DEAD_QUEUE) == 0


async def test_invalid_events_go_back_only_when_asked(
    db: Conn, platform: Platform, broker: Broker
) -> None:
    await hooks(db, 1)
    with_key = b'{"id": "1", "event": "joined", "queue_id": "x"}'
    without_key = b"\xff not json"
    await dead_invalid(broker, with_key, "queue.12.joined")
    await dead_invalid(broker, without_key)

    plain = await queue_hooks("dlq", "replay")
    assert "replayed 0 dead letter(s); 2 invalid event(s) left" in plain.out
    assert await platform.depth(t.DEAD_QUEUE) == 2

    result = await queue_hooks("dlq", "replay", "--include-invalid")
    assert "replayed 2 dead letter(s)" in result.out, result.out + result.err
    queue = await platform.channel.get_queue(t.EVENTS_QUEUE)
    back = [await queue.get(), await queue.get()]
    assert [(m.body, m.routing_key) for m in back] == [
        (with_key, "queue.12.joined"),  # byte for byte, to where the platform sent it
        (without_key, "queue.0.unknown"),
    ]
    assert await platform.depth(t.DEAD_QUEUE) == 0


async def test_purge_asks_first(platform: Platform, broker: Broker) -> None:
    keep = await dead_delivery(broker, 1, "exhausted")
    await dead_delivery(broker, 2, "rejected")
    await dead_delivery(broker, 3, "rejected")

    no = await queue_hooks("dlq", "purge", "--reason", "rejected", stdin="n\n")
    assert "delete 2 dead letter(s) (reason rejected) for good?" in no.err
    assert "deleted none" in no.out
    assert await platform.depth(t.DEAD_QUEUE) == 3
    silent = await queue_hooks("dlq", "purge")  # no answer at all is no
    assert silent.code == 1 and await platform.depth(t.DEAD_QUEUE) == 3

    yes = await queue_hooks("dlq", "purge", "--reason", "rejected", stdin="y\n")
    assert "deleted 2 dead letter(s) (reason rejected)" in yes.out
    assert [x["event_id"] for x in await listed()] == [keep.event_id]

    forced = await queue_hooks("dlq", "purge", "--yes")
    assert "deleted 1 dead letter(s)" in forced.out
    assert await platform.depth(t.DEAD_QUEUE) == 0


async def test_a_replay_killed_midway_loses_nothing(
    db: Conn, platform: Platform, broker: Broker
) -> None:
    """Move = confirmed publish, then ack: wherever the kill lands, every letter is still in
    the dead queue, in the retry queue, or (killed between the two) in both."""
    (hook,) = await hooks(db, 1)
    ids = {(await dead_delivery(broker, hook)).event_id for _ in range(400)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "dlq", "replay", cwd=NO_DOTENV,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await until(lambda: _some_moved(platform), within=30)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    # The broker requeues what the dead process held once it sees the connection gone.
    await until(lambda: _all_settled(platform, len(ids)), within=30)
    in_retry = {str(m.headers[t.H_EVENT_ID]) for m in await retry_messages(platform)}
    in_dead = {x.event_id for x in (await read_letters(make_settings(), Filter()))[0]}
    assert in_retry | in_dead == ids


async def _some_moved(platform: Platform) -> bool:
    return await platform.depth(t.RETRY_QUEUE) > 0


async def _all_settled(platform: Platform, count: int) -> bool:
    return await platform.depth(t.RETRY_QUEUE) + await platform.depth(t.DEAD_QUEUE) >= count
