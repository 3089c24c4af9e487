"""Logs as ops read them: one line per delivery outcome and per dead letter, and never a
secret, a signature or a header value, whatever happens to the delivery."""

from __future__ import annotations

import asyncio
import base64
import signal

import orjson

from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema
from tests.support.processes import start_process, wait_consuming
from tests.support.receiver import Receiver, fail_first, status
from tests.support.settings import TEST_DELAYS
from worker import secrets

SECRET = "whsec_" + base64.b64encode(b"log-test secret, 32 bytes long!!").decode()
SEALED_SECRET = "whsec_" + base64.b64encode(b"an encrypted one, also 32 bytes.").decode()
SECRET_KEY = "operator key that must stay private"
AUTHORIZATION = "Bearer tok-3f9a1c77e2"
API_KEY = "key-8d2e6b1f"
URL_TOKEN = "qs-5c4b3a29"


async def test_no_secret_signature_or_header_value_in_any_log_line(
    db: Conn, platform: Platform, receiver: Receiver
) -> None:
    await seed_queue(db, 1, 1)
    headers = {"Authorization": AUTHORIZATION, "X-Api-Key": API_KEY}
    paths = {"/ok": status(204), "/flaky": fail_first(1, 500), "/down": status(503),
             "/gone": status(410), "/bad": status(400)}  # fmt: skip
    hooks: dict[str, int] = {}
    for path, behaviour in paths.items():
        receiver.on(path, behaviour)
        secret = SECRET if path != "/gone" else secrets.seal(SEALED_SECRET, SECRET_KEY)
        schema = await seed_schema(
            db, receiver.url(path) + f"?token={URL_TOKEN}", secret=secret, headers=headers
        )
        hooks[path] = await seed_hook(db, 1, "joined", schema)
    proc = await start_process(
        QUEUE_HOOKS_LOG_LEVEL="debug",
        QUEUE_HOOKS_SECRET_KEY=SECRET_KEY,
        QUEUE_HOOKS_QUICK_RETRIES="1",
    )
    await wait_consuming(proc)
    sent = await platform.publish(event(1, "joined"))
    dead = await platform.dead_letters(3, within=30)  # /down exhausted, /gone, /bad
    await receiver.wait_for(2, "/flaky")
    proc.send_signal(signal.SIGTERM)
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]

    text = err.decode()
    signatures = [r.headers["webhook-signature"] for r in receiver.requests]
    assert len(signatures) == len(receiver.requests) > 5
    forbidden = [SECRET, SECRET.removeprefix("whsec_"), SEALED_SECRET, SECRET_KEY,
                 AUTHORIZATION, "tok-3f9a1c77e2", API_KEY, URL_TOKEN]  # fmt: skip
    forbidden += [s for sig in signatures for s in (sig, sig.removeprefix("v1,"))]
    leaked = [value for value in forbidden if value in text]
    assert leaked == [], f"in the logs: {leaked}"

    # What must be there: a line per outcome, with its fields, and a line per dead letter.
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    outcomes = [x for x in lines if x.get("msg") == "delivery"]
    event_id = orjson.loads(sent)["id"]
    assert len(outcomes) == len(receiver.requests) - _quick_retries(receiver)
    by_hook = {hook: [x["outcome"] for x in outcomes if x["hook_id"] == hook]
               for hook in hooks.values()}  # fmt: skip
    assert by_hook[hooks["/ok"]] == ["delivered"]
    assert by_hook[hooks["/flaky"]] == ["retry", "delivered"]
    assert by_hook[hooks["/down"]] == ["retry"] * len(TEST_DELAYS) + ["dead"]
    assert by_hook[hooks["/gone"]] == by_hook[hooks["/bad"]] == ["dead"]
    for line in outcomes:
        assert line["event_id"] == event_id and line["event_type"] == "joined"
        assert line["queue_id"] == 1 and {"schema_id", "attempt", "status", "duration_ms"} <= set(
            line
        )
    deaths = [x for x in lines if x.get("msg") == "delivery dead-lettered"]
    assert sorted(x["reason"] for x in deaths) == ["exhausted", "gone", "rejected"]
    assert sorted(str(d.headers["queue-hooks-reason"]) for d in dead) == sorted(
        x["reason"] for x in deaths
    )


def _quick_retries(receiver: Receiver) -> int:
    """Requests made by in-process quick retries of a 503: each series logs one outcome."""
    down = receiver.at("/down")
    return len(down) - (len(TEST_DELAYS) + 1)
