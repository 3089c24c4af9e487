"""End to end through the real broker and database: what a receiver gets (contract §3, §5)."""

from __future__ import annotations

import base64
import os

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from schemas.queue_types import EVENTS, fires
from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema
from tests.support.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


def queue_type_for(name: str) -> int:
    """A queue type that fires `name` (active only fires for chats and tasks)."""
    return next(t for t in range(8) if fires(t, name))


async def test_every_event_is_delivered_signed_with_its_fields(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    schema = await seed_schema(db, receiver.url(), secret=SECRET, headers={"X-Tenant": "t1"})
    sent = {}
    for n, name in enumerate(EVENTS, start=1):
        await seed_queue(db, n, queue_type_for(name), variables={"queue_var": "q", "lang": "fr"})
        await seed_hook(db, n, name, schema)
        sent[name] = event(
            n, name, attempt_id="42", agent_id="7", call_bill_sec="12.5", cc_result="success",
            channel="chat" if name == "active" else "call",
            variables={"lang": "en", "agent_id": "forged", "score": 9},
        )  # fmt: skip
    await start_worker()
    for body in sent.values():
        await platform.publish(body)
    got = await receiver.wait_for(len(EVENTS))
    assert len(got) == len(EVENTS)
    verifier = Webhook(SECRET)
    for request in got:
        payload = verifier.verify(request.body, request.headers)
        name = payload["type"]
        original = sent[name]
        assert payload["id"] == original["id"]
        assert payload["timestamp"] == "2026-11-24T10:00:00.250000Z"
        assert payload["schema_id"] == schema
        assert request.webhook_id == f"{original['id']}:{payload['hook_id']}"
        assert request.attempt == 1
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("queue-hooks/")
        assert request.headers["x-tenant"] == "t1"
        data = payload["data"]
        assert data["queue_var"] == "q" and data["lang"] == "en" and data["score"] == "9"
        assert data["attempt_id"] == 42
        if name == "joined":
            assert "agent_id" not in data and "call_bill_sec" not in data
        else:
            assert data["agent_id"] == 7  # the variable could not pose as the field
        if name in ("answered", "offering", "bridged", "missed", "leaving", "processing"):
            assert data["call_bill_sec"] == 12.5
        if name == "active":
            assert "call_bill_sec" not in data  # a chat: no call fields
        assert ("cc_result" in data) == (name == "leaving")


async def test_a_queue_variables_numbers_arrive_as_the_database_writes_them(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    # As an event's variables are taken as their JSON text (contract §1): read back through
    # orjson, 1.50 came out "1.5" and 2**70 "1.1805916207174113e+21", its digits lost.
    schema = await seed_schema(db, receiver.url())
    await seed_queue(db, 1, 1)
    await db.execute(
        "UPDATE queue_hooks.queues SET variables ="
        ' \'{"price": 1.50, "account": 1180591620717411303424, "vip": true, "n": 0}\'::jsonb'
        " WHERE id = 1"
    )
    await seed_hook(db, 1, "joined", schema)
    await start_worker()
    await platform.publish(event(1, "joined"))
    (request,) = await receiver.wait_for(1)
    data = orjson.loads(request.body)["data"]
    assert (data["price"], data["account"]) == ("1.50", "1180591620717411303424")
    assert (data["vip"], data["n"]) == ("true", "0")


async def test_unsigned_schema_sends_no_signature(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    schema = await seed_schema(db, receiver.url())
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", schema)
    await start_worker()
    await platform.publish(event(1, "joined"))
    (request,) = await receiver.wait_for(1)
    assert "webhook-signature" not in request.headers
    assert orjson.loads(request.body)["type"] == "joined"


async def test_one_event_calls_every_schema_of_its_hooks_once(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    a = await seed_schema(db, receiver.url("/a"))
    b = await seed_schema(db, receiver.url("/b"))
    await seed_hook(db, 1, "leaving", a)
    await seed_hook(db, 1, "leaving", b)
    other = await seed_schema(db, receiver.url("/other"))
    await seed_hook(db, 1, "joined", other)
    await start_worker()
    await platform.publish(event(1, "leaving"))
    got = await receiver.wait_for(2)
    assert sorted(r.path for r in got) == ["/a", "/b"]
    assert len({r.webhook_id for r in got}) == 2


@pytest.mark.parametrize("routing_key", ["queue.999.joined", "queue.1.leaving"])
async def test_the_body_not_the_routing_key_decides(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker, routing_key: str
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    await start_worker()
    await platform.publish(event(1, "joined"), routing_key=routing_key)
    (request,) = await receiver.wait_for(1)
    assert request.json["queue_id"] == 1
