"""The local cluster profile itself (`make cluster-check`, also run by `make chaos`): three
RabbitMQ nodes in one cluster whose quorum queues live on all three and survive the loss of
their leader, and a PostgreSQL standby that streams from the primary and can take its place.

These check the engines as services.sh sets them up, through the helpers the fault tests use
(node-kill, node-start, pg-promote); the worker's own failover is checked by the fault suite.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest

from tests.chaos.harness import SERVICES

pytestmark = pytest.mark.skipif(
    os.environ.get("QH_CHAOS_PROFILE") != "cluster",
    reason="needs the cluster profile: run `make cluster-check`",
)
PROBE_QUEUE = "qh-cluster-check"


async def services(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(SERVICES), args[0], "cluster", *args[1:],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, f"services.sh {' '.join(args)} failed:\n{out.decode()}"
    # The queries print one line; the actions' [cluster] chatter comes before it.
    lines = [line for line in out.decode().splitlines() if not line.startswith("[cluster]")]
    return "\n".join(lines).strip()


async def until(check: Callable[[], Awaitable[bool]], within: float = 30) -> None:
    """Wait on a condition (errors count as not yet), never on a fixed time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            if await check():
                return
        except (AssertionError, OSError, asyncpg.PostgresError, aio_pika.exceptions.AMQPError):
            pass
        assert loop.time() < deadline, f"not true within {within}s: {check.__doc__}"
        await asyncio.sleep(0.2)


def amqp_urls() -> dict[str, str]:
    urls = os.environ["QUEUE_HOOKS_AMQP_URL"].split(",")
    return {f"rabbit{i}": url for i, url in enumerate(urls, 1)}


def pg_dsns() -> dict[str, str]:
    """One DSN per node, from the multi-host DATABASE_URL (pg1 first)."""
    url = urlsplit(os.environ["QUEUE_HOOKS_DATABASE_URL"])
    user, _, hosts = url.netloc.rpartition("@")
    return {f"pg{i}": f"postgresql://{user}@{host}{url.path}"
            for i, host in enumerate(hosts.split(","), 1)}  # fmt: skip


@pytest.fixture
async def cluster() -> AsyncIterator[None]:
    await services("start")
    yield
    await services("start")  # whatever a test killed comes back for the next one


def test_env_names_every_node() -> None:
    assert len(amqp_urls()) == 3
    assert len(set(amqp_urls().values())) == 3
    assert len(pg_dsns()) == 2
    assert "target_session_attrs=read-write" in os.environ["QUEUE_HOOKS_DATABASE_URL"]


async def test_quorum_queue_on_three_nodes_survives_its_leader(cluster: None) -> None:
    await services("status")  # exit 3 if any node is down
    urls = amqp_urls()
    conn = await aio_pika.connect(urls["rabbit1"])
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        await channel.queue_delete(PROBE_QUEUE)
        queue = await channel.declare_queue(
            PROBE_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
        )
        body = uuid.uuid4().bytes
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue.name,
        )
    assert (await services("members", PROBE_QUEUE)).split() == ["rabbit1", "rabbit2", "rabbit3"]

    leader = await services("leader", PROBE_QUEUE)
    await services("node-kill", leader)
    other = next(name for name in urls if name != leader)

    async def new_leader() -> bool:
        """another node leads the queue"""
        return (await services("leader", PROBE_QUEUE)) not in ("", leader)

    await until(new_leader)
    conn = await aio_pika.connect(urls[other])
    async with conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(PROBE_QUEUE, passive=True)
        message = await queue.get(timeout=10, fail=True)
        assert message is not None
        assert message.body == body, "the confirmed message survived its leader's death"
        await message.ack()
        await channel.queue_delete(PROBE_QUEUE)
    await services("node-start", leader)
    await services("status")


async def test_standby_streams_and_is_promoted(cluster: None) -> None:
    dsns = pg_dsns()
    primary = await services("pg-primary")
    standby = next(name for name in dsns if name != primary)
    marker = uuid.uuid4().hex
    conn = await asyncpg.connect(dsns[primary])
    try:
        states = await conn.fetch("SELECT application_name, state FROM pg_stat_replication")
        assert [tuple(r) for r in states] == [(f"qh-{standby}", "streaming")]
        await conn.execute("CREATE TABLE IF NOT EXISTS qh_cluster_check (marker text)")
        await conn.execute("INSERT INTO qh_cluster_check VALUES ($1)", marker)
    finally:
        await conn.close()

    async def replicated() -> bool:
        """the standby has the primary's row"""
        conn = await asyncpg.connect(dsns[standby])
        try:
            assert await conn.fetchval("SELECT pg_is_in_recovery()")
            return bool(
                await conn.fetchval("SELECT 1 FROM qh_cluster_check WHERE marker = $1", marker)
            )
        finally:
            await conn.close()

    await until(replicated)

    await services("node-kill", primary)
    await services("pg-promote")
    assert (await services("pg-primary")) == standby
    # The multi-host URL finds the new primary by itself.
    conn = await asyncpg.connect(os.environ["QUEUE_HOOKS_DATABASE_URL"])
    try:
        assert not await conn.fetchval("SELECT pg_is_in_recovery()")
        found = "SELECT count(*) FROM qh_cluster_check WHERE marker = $1"
        assert await conn.fetchval(found, marker), "the promoted standby has the row"
        await conn.execute("DROP TABLE qh_cluster_check")
    finally:
        await conn.close()

    await services("node-start", primary)  # the old primary comes back as the new one's standby
    conn = await asyncpg.connect(dsns[standby])
    try:
        states = await conn.fetch("SELECT application_name, state FROM pg_stat_replication")
        assert [tuple(r) for r in states] == [(f"qh-{primary}", "streaming")]
    finally:
        await conn.close()
