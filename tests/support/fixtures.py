"""The fixtures of the tests that need services: the real RabbitMQ and PostgreSQL that
`make test` starts, real HTTP receivers and in-process workers. Loaded by tests/conftest.py;
nothing here touches a service until a test asks for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aio_pika
import pytest

from tests.support.cache import watch
from tests.support.helpers import Conn, Platform
from tests.support.receiver import Receiver
from tests.support.settings import TEST_DELAYS, make_settings
from worker.app import Worker
from worker.broker import Broker
from worker.broker import topology as t
from worker.store import connect, migrate

StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture(scope="session")
async def database() -> str:
    """A fresh schema for the whole run: dropped and migrated once."""
    dsn = make_settings().database_url
    conn = await connect(dsn)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS queue_hooks CASCADE")
        await migrate(conn)
    finally:
        await conn.close()
    return dsn


@pytest.fixture
async def db(database: str) -> AsyncIterator[Conn]:
    conn = await connect(database)
    await conn.execute(
        "TRUNCATE queue_hooks.hooks, queue_hooks.schemas, queue_hooks.queues"
        " RESTART IDENTITY CASCADE"
    )
    try:
        yield conn
    finally:
        await conn.close()


# Every delay a broker of this run has declared a wait queue for, not only TEST_DELAYS: a
# message left in another tier's queue (queue-hooks.wait.1s, say) outlives its test, expires
# into the next test's retry queue and is delivered to that test's hook of the same id.
# The broker cannot list its queues over AMQP, and rabbitmqctl takes half a second a call.
_WAIT_DELAYS: set[float] = set(TEST_DELAYS)


@pytest.fixture(scope="session", autouse=True)
def _wait_delays_recorded() -> Iterator[None]:
    """Each in-process broker (a worker's or a test's own) records its tiers as it declares
    them; the test profile's subprocesses run with TEST_DELAYS (tests/support/processes.py)."""
    declare = Broker.declare

    async def recording(self: Broker) -> None:
        _WAIT_DELAYS.update(self.delays)
        await declare(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Broker, "declare", recording)
        yield


async def delete_our_queues(channel: aio_pika.abc.AbstractChannel) -> None:
    """The wait queues first: one that expires meanwhile dead-letters into no retry queue."""
    specs = t.queue_specs(tuple(_WAIT_DELAYS))
    for spec in sorted(specs, key=lambda s: not s.name.startswith(t.WAIT_PREFIX)):
        await channel.queue_delete(spec.name)


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    """A clean broker: our queues deleted, so each test starts from nothing; and deleted
    again after it, so that a later run (another pytest) does not find what it left either:
    that one knows only TEST_DELAYS until its brokers declare their tiers."""
    settings = make_settings()
    conn = await aio_pika.connect(settings.amqp_url)
    channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
    await delete_our_queues(channel)
    await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    try:
        yield Platform(channel, settings.exchange)
        await delete_our_queues(await conn.channel())  # the test's may be closed by now
    finally:
        await conn.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    await rx.start()
    try:
        yield rx
    finally:
        await rx.stop()


@pytest.fixture
async def start_worker(db: Conn, platform: Platform) -> AsyncIterator[StartWorker]:
    """Starts in-process workers; each is stopped (SIGTERM's path) after the test."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> Worker:
        worker = Worker(make_settings(**overrides))
        watch(worker)
        task = asyncio.create_task(worker.run())
        running.append((worker, task))
        async with asyncio.timeout(30):
            while not worker.consuming:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        return worker

    try:
        yield start
    finally:
        for worker, _task in running:
            worker.stop()
        for _worker, task in running:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
