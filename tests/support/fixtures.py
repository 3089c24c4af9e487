"""The fixtures of the tests that need services: the real RabbitMQ and PostgreSQL that
`make test` starts, real HTTP receivers and in-process workers. Loaded by tests/conftest.py;
nothing here touches a service until a test asks for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest

from tests.support.cache import watch
from tests.support.helpers import Conn, Platform
from tests.support.receiver import Receiver
from tests.support.settings import TEST_DELAYS, make_settings
from worker.app import Worker
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


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    """A clean broker: our queues deleted, so each test starts from nothing."""
    settings = make_settings()
    conn = await aio_pika.connect(settings.amqp_url)
    channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
    for spec in t.queue_specs(TEST_DELAYS):
        await channel.queue_delete(spec.name)
    await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    try:
        yield Platform(channel, settings.exchange)
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
