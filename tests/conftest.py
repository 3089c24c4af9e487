"""Fixtures: the real RabbitMQ and PostgreSQL started by `make test`, and real HTTP receivers."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest

from tests.helpers import Conn, Platform
from tests.receiver import Receiver
from worker import logs
from worker.app import Worker
from worker.broker import topology as t
from worker.settings import Settings
from worker.store import connect, migrate

TEST_DELAYS = (0.3, 0.6)
# The fault suite stops and starts the services: only `make chaos` runs it.
collect_ignore = [] if os.environ.get("QH_CHAOS_PROFILE") else ["chaos"]

if "QUEUE_HOOKS_AMQP_URL" not in os.environ or "QUEUE_HOOKS_DATABASE_URL" not in os.environ:
    raise pytest.UsageError(
        "the tests need the real services: run `make test` (it starts them), or set "
        "QUEUE_HOOKS_AMQP_URL and QUEUE_HOOKS_DATABASE_URL"
    )


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "retry_delays": TEST_DELAYS,
        "allow_private_targets": True,  # the receivers live on 127.0.0.1
        "metrics_port": 0,
        "shutdown_grace": 5.0,
        "cache_poll": 0.5,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    logs.configure("json", "warning")


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


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(db: Conn, platform: Platform) -> AsyncIterator[StartWorker]:
    """Starts in-process workers; each is stopped (SIGTERM's path) after the test."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> Worker:
        worker = Worker(make_settings(**overrides))
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
