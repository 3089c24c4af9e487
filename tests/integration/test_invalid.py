"""Bad input never stops the worker: each invalid event is dead-lettered byte for byte (§1, §6)."""

from __future__ import annotations

import uuid

import aio_pika
import orjson
import pytest

from tests.support.cli import queue_hooks
from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.receiver import Receiver
from worker.app import Worker
from worker.broker import topology as t

GOOD_ID = str(uuid.uuid4())
BAD = [
    (b'{"id": "' + GOOD_ID.encode() + b'", "event": "lea', "not valid JSON", None),
    (b"[1, 2, 3]", "not an object", None),
    (b'{"id": "\xff\xfe", "event": "joined"}', "not UTF-8", None),
    (orjson.dumps(event(1, "hangup", id=GOOD_ID)), 'event: "hangup" is not one of', GOOD_ID),
    (
        orjson.dumps(event(1, "leaving", id=GOOD_ID, attempt_id="abc")),
        'attempt_id: "abc" is not an integer',
        GOOD_ID,
    ),
    (orjson.dumps(event(1, "joined", id=GOOD_ID, channel="fax")), "channel", GOOD_ID),
    (
        orjson.dumps(event(1, "joined", id=GOOD_ID, destination="x" * 5000)),
        "over the limit",
        GOOD_ID,
    ),
]


async def test_invalid_events_are_dead_lettered_and_the_next_is_delivered(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    await start_worker(max_event_bytes=4096)
    for raw, _words, _id in BAD:
        await platform.publish(raw, routing_key="queue.1.joined")
    good = await platform.publish(event(1, "joined"))
    dead = await platform.dead_letters(len(BAD))
    (request,) = await receiver.wait_for(1)
    assert request.json["id"] == orjson.loads(good)["id"]
    by_body = {d.body: d for d in dead}
    for raw, words, event_id in BAD:
        letter = by_body[raw]  # byte for byte
        assert letter.headers[t.H_REASON] == "invalid"
        assert words in str(letter.headers[t.H_ERROR])
        assert letter.headers[t.H_ATTEMPTS] == 0
        assert t.H_HOOK_ID not in letter.headers
        if event_id is not None:
            assert letter.headers[t.H_EVENT_ID] == event_id


async def test_a_stray_message_in_the_retry_queue_is_kept_not_fatal(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    await start_worker()
    stray = b'{"hello": "world"}'
    await platform.channel.default_exchange.publish(
        aio_pika.Message(stray, headers={t.H_HOOK_ID: "not a number"}), routing_key=t.RETRY_QUEUE
    )
    (dead,) = await platform.dead_letters(1)
    assert dead.body == stray
    assert dead.headers[t.H_REASON] == "invalid"
    await platform.publish(event(1, "joined"))
    await receiver.wait_for(1)  # still working


async def test_a_message_that_keeps_failing_the_worker_is_set_aside(
    db: Conn,
    platform: Platform,
    receiver: Receiver,
    start_worker: StartWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected error stops the worker (fatal) and hands the message back; on its third
    delivery the message is dead-lettered instead, so it cannot stop every worker in turn."""
    from schemas import events
    from worker import pipeline

    def parse(body: bytes, limit: int) -> events.Event:
        if b"poison" in body:
            raise RuntimeError("a bug the worker did not expect")
        return events.parse_event(body, limit)

    monkeypatch.setattr(pipeline, "parse_event", parse)
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    poison = b""
    for _ in range(3):  # each failure may stop a worker; a later one sets the message aside
        worker = await start_worker()
        if not poison:  # the queue exists once a worker declared it
            poison = await platform.publish(event(1, "joined", destination="poison"))

        async def settled(w: Worker = worker) -> bool:
            return not w.consuming or await platform.depth(t.DEAD_QUEUE) > 0

        await until(settled)
        if worker.consuming:
            break
    assert worker.consuming
    (dead,) = await platform.dead_letters(1)
    assert dead.body == poison
    assert dead.headers[t.H_REASON] == "invalid"
    assert "failed on this message 3 times: a bug the worker did not expect" in str(
        dead.headers[t.H_ERROR]
    )
    await platform.publish(event(1, "joined"))
    await receiver.wait_for(1)  # the third worker carries on


async def test_a_boolean_id_is_dead_lettered_and_a_chats_bad_call_field_is_ignored(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    # Issue 12, defects 9 and 1, through the worker. Queue 1 has hooks: `"queue_id": true`
    # used to be delivered to them as queue 1.
    await seed_queue(db, 1, 6)  # an inbound chat queue
    schema = await seed_schema(db, receiver.url())
    await seed_hook(db, 1, "joined", schema)
    await seed_hook(db, 1, "leaving", schema)
    await start_worker()
    as_queue_1 = await platform.publish(event(1, "joined") | {"queue_id": True}, "queue.1.joined")
    as_attempt_1 = await platform.publish(event(1, "joined", attempt_id=True))
    chat = event(1, "leaving", channel="chat", call_duration="n/a", cc_result="success")
    await platform.publish(chat)
    dead = {d.body: d for d in await platform.dead_letters(2)}
    assert dead[as_queue_1].headers[t.H_ERROR] == "queue_id: true is not an integer"
    assert dead[as_attempt_1].headers[t.H_ERROR] == "attempt_id: true is not an integer"
    assert {d.headers[t.H_REASON] for d in dead.values()} == {"invalid"}
    (request,) = await receiver.wait_for(1)
    assert request.json["id"] == chat["id"]
    assert request.json["data"] == {"channel": "chat", "cc_result": "success"}


async def test_publish_sends_an_event_whatever_its_queue_and_event_are(
    db: Conn, platform: Platform, start_worker: StartWorker
) -> None:
    # `publish --body` is for checks with broken events, but an event name or queue id past
    # 255 bytes of routing key ('queue.<queue_id>.<event>') was a traceback ("Routing key too
    # long"), nothing sent. The worker reads the body, not the key: it is dead-lettered as is.
    await start_worker()
    bodies = [
        orjson.dumps(event(1, "x" * 300)),
        orjson.dumps(event(1, "joined") | {"queue_id": "9" * 300}),
    ]
    for body in bodies:
        assert (await queue_hooks("publish", "--body", "-", stdin=body.decode())).code == 0
    sample = await queue_hooks("publish", "--queue", "9" * 300, "--event", "joined")
    bodies.append(sample.ok.strip().encode())
    dead = await platform.dead_letters(3)
    assert sorted(d.body for d in dead) == sorted(bodies)
    assert {d.headers[t.H_REASON] for d in dead} == {"invalid"}
