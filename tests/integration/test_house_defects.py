"""Issue 12's defects against the real services: one schema that cannot sign (7), and header
values far beyond a frame (8)."""

from __future__ import annotations

import asyncio
import os
import signal
from urllib.parse import urlsplit

import httpx
import orjson

from tests.support.cli import free_port, queue_hooks
from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.processes import start_process
from tests.support.receiver import Receiver
from worker import secrets
from worker.broker import topology as t

KEY = "the-key-it-was-sealed-with"
PASSWORD = "pw-that-must-never-show-9f3"
HUGE = 200_000  # characters: a header of it alone is beyond RabbitMQ's 128 KiB frame


async def _get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(f"http://127.0.0.1:{port}{path}")


async def _unsigned_gauge(port: int) -> float:
    for line in (await _get(port, "/metrics")).text.splitlines():
        if line.startswith("queue_hooks_schemas_unsigned "):
            return float(line.split()[1])
    raise AssertionError("no queue_hooks_schemas_unsigned metric")


async def test_a_schema_whose_secret_cannot_be_read_stops_only_its_own_deliveries(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/good")))
    sealed = secrets.seal(secrets.generate(), KEY)
    bad = await seed_schema(db, receiver.url("/bad"), secret=sealed)
    await seed_hook(db, 1, "joined", bad)
    port = free_port()
    worker = await start_worker(metrics_port=port)  # no QUEUE_HOOKS_SECRET_KEY: it starts

    sent = orjson.loads(await platform.publish(event(1, "joined")))
    (good,) = await receiver.wait_for(1, "/good")
    assert good.json["id"] == sent["id"]
    (dead,) = await platform.dead_letters(1)  # through the retry tiers, never sent
    assert dead.headers[t.H_REASON] == "exhausted"
    assert dead.headers[t.H_ATTEMPTS] == 0
    error = str(dead.headers[t.H_ERROR])
    assert f"schema {bad} cannot sign" in error and "QUEUE_HOOKS_SECRET_KEY" in error
    assert f"rotate-secret {bad}" in error
    assert receiver.at("/bad") == []  # never unsigned

    ready = await _get(port, "/readyz")
    assert ready.status_code == 200 and f"schema {bad} cannot sign" in ready.text
    assert await _unsigned_gauge(port) == 1
    check = await queue_hooks("check", QUEUE_HOOKS_METRICS_PORT=str(port))
    assert f"schema {bad}: secret is encrypted" in check.out, check.out
    assert check.code == 0, check.out  # the worker is ready for every other schema

    # A running worker meets a second bad row: it goes on.
    await db.execute("UPDATE queue_hooks.schemas SET secret = 'enc:damaged' WHERE id <> $1", bad)

    async def two_unsigned() -> bool:
        return await _unsigned_gauge(port) == 2

    await until(two_unsigned)
    assert worker.consuming

    # Fixed in the database: it takes effect without a restart.
    fixed = secrets.generate()
    await db.execute("UPDATE queue_hooks.schemas SET secret = $1", fixed)

    async def none_unsigned() -> bool:
        return await _unsigned_gauge(port) == 0

    await until(none_unsigned)
    assert "cannot sign" not in (await _get(port, "/readyz")).text
    await platform.publish(event(1, "joined"))
    (signed,) = await receiver.wait_for(1, "/bad")
    assert "webhook-signature" in signed.headers
    assert worker.consuming


async def test_a_huge_event_id_never_costs_the_connection(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    worker = await start_worker()  # MAX_EVENT_BYTES as shipped: 1 MiB
    connection = worker.broker._conn
    assert connection is not None
    channel = await connection.channel()
    under = await platform.publish(event(1, "joined", id="x" * HUGE))
    over = await platform.publish(event(1, "joined", id="y" * (1 << 20)))  # over MAX_EVENT_BYTES
    good = orjson.loads(await platform.publish(event(1, "joined")))
    (request,) = await receiver.wait_for(1)
    assert request.json["id"] == good["id"]
    dead = await platform.dead_letters(2)
    by_body = {d.body: d for d in dead}
    for body, size in ((under, HUGE), (over, 1 << 20)):
        letter = by_body[body]  # byte for byte
        assert letter.headers[t.H_REASON] == "invalid"
        assert t.H_EVENT_ID not in letter.headers
        assert f"its id ({size} characters, not a UUID)" in str(letter.headers[t.H_ERROR])
    await asyncio.sleep(0)
    assert not channel.is_closed  # the connection was never closed under us
    assert await platform.depth(t.DEAD_QUEUE) == 0 and await platform.depth(t.EVENTS_QUEUE) == 0
    await channel.close()


async def test_no_password_in_the_log_lines_of_services_that_refuse(db: Conn) -> None:
    """Defect 4: a worker whose RabbitMQ refuses its password, and one whose database is
    unreachable, say so without the passwords of their URLs."""
    real = urlsplit(os.environ["QUEUE_HOOKS_AMQP_URL"])
    cases = [
        ("broker", {"QUEUE_HOOKS_AMQP_URL": f"amqp://guest:{PASSWORD}@{real.netloc.split('@')[-1]}/"}),
        ("database", {"QUEUE_HOOKS_DATABASE_URL": f"postgresql://postgres:{PASSWORD}@127.0.0.1:9/x"}),
    ]  # fmt: skip
    for what, env in cases:
        proc = await start_process(**env)
        assert proc.stderr is not None
        lines: list[bytes] = []
        async with asyncio.timeout(30):
            while not any(b"unreachable" in line or b"stopped" in line for line in lines):
                line = await proc.stderr.readline()
                if not line:
                    break
                lines.append(line)
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _out, rest = await asyncio.wait_for(proc.communicate(), 30)
        text = b"".join(lines).decode() + rest.decode()
        assert what in text or "ACCESS_REFUSED" in text, text[-2000:]
        assert PASSWORD not in text, text[-2000:]
