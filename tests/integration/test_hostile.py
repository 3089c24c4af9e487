"""Hostile bodies through the real broker (issue 6): each is dead-lettered `invalid` byte for
byte or delivered as the contract says, the worker never falls over, and the valid events
interleaved with them are all delivered."""

from __future__ import annotations

from collections import Counter, defaultdict

import orjson

from schemas.events import InvalidEvent
from schemas.payload import encode_data
from schemas.queue_types import EVENTS
from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema
from tests.support.hostile import (
    HOSTILE_BODIES,
    HOSTILE_MAX_BYTES,
    QUEUE_VARIABLES,
    check_delivered,
    outcome,
    sample,
)
from tests.support.receiver import Receiver
from worker.broker import topology as t

BATCH = 300


async def test_hostile_bodies_interleaved_with_valid_events(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 0, variables=QUEUE_VARIABLES)  # offline queue: all but `active`
    schema = await seed_schema(db, receiver.url("/h"))
    hooks = {name: await seed_hook(db, 1, name, schema) for name in EVENTS if name != "active"}
    worker = await start_worker(max_event_bytes=HOSTILE_MAX_BYTES)

    invalid: Counter[bytes] = Counter()
    expected: list[tuple[bytes, str, bytes]] = []  # (sent, webhook-id, data as encoded)
    valid_ids: set[str] = set()
    for body in sample(HOSTILE_BODIES, BATCH):
        result = outcome(body)
        if isinstance(result, InvalidEvent):
            invalid[body] += 1
        elif result.queue_id == 1 and result.event in hooks:
            webhook_id = f"{result.id}:{hooks[result.event]}"
            expected.append((body, webhook_id, encode_data(result, QUEUE_VARIABLES)))
        await platform.publish(body, routing_key="queue.1.x")
        valid = await platform.publish(event(1, "joined"))
        valid_ids.add(orjson.loads(valid)["id"])
    assert invalid and expected, "the sample should hold both kinds"

    dead = await platform.dead_letters(sum(invalid.values()), within=60)
    requests = await receiver.wait_for(len(expected) + BATCH, within=60)
    assert worker.consuming  # still running: nothing made it fall over

    # Each invalid body is in the dead-letter queue, byte for byte, as `invalid`.
    assert Counter(d.body for d in dead) == invalid
    assert {d.headers[t.H_REASON] for d in dead} == {"invalid"}
    # Each valid one was delivered with the data the contract prescribes.
    by_webhook: defaultdict[str, list[bytes]] = defaultdict(list)
    for r in requests:
        by_webhook[r.webhook_id].append(r.body)
    for sent, webhook_id, data in expected:
        bodies = by_webhook[webhook_id]
        assert bodies, f"not delivered: {sent[:200]!r}"
        matching = [b for b in bodies if orjson.loads(b)["data"] == orjson.loads(data)]
        assert matching, f"delivered with other data: {sent[:200]!r}"
        check_delivered(sent, matching[0], hooks[orjson.loads(sent)["event"]], schema)
    # And every valid event interleaved with them got through.
    delivered_ids = {orjson.loads(r.body)["id"] for r in requests}
    assert valid_ids <= delivered_ids
    assert await platform.depth(t.EVENTS_QUEUE) == 0
