"""`queue-hooks run --processes 2`: a supervisor, its children, one /metrics (worker/supervisor)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import orjson

from tests.support.cli import NO_DOTENV
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.processes import worker_env
from tests.support.receiver import Receiver
from worker.broker import topology as t


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{port}{path}", timeout=5)


async def ready(port: int) -> bool:
    try:
        return (await get(port, "/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


def delivered_total(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("queue_hooks_deliveries_total{") and 'outcome="delivered"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def publish(platform: Platform, count: int) -> set[str]:
    ids = set()
    for _ in range(count):
        ids.add(str(orjson.loads(await platform.publish(event(1, "joined")))["id"]))
    return ids


async def test_two_processes_survive_a_killed_child_share_metrics_and_stop_cleanly(
    db: Conn, platform: Platform, receiver: Receiver
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "run", "--processes", "2",
        env=worker_env(QUEUE_HOOKS_METRICS_PORT=str(port), QUEUE_HOOKS_SHUTDOWN_GRACE="5s"),
        cwd=NO_DOTENV, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await until(lambda: ready(port), 60)
        first = children(proc.pid)
        assert len(first) == 2

        ids = await publish(platform, 20)
        await until(lambda: asyncio.sleep(0, {r.json["id"] for r in receiver.requests} >= ids))

        os.kill(first[0], signal.SIGKILL)
        await until(lambda: asyncio.sleep(0, first[0] not in children(proc.pid)), 20)
        await until(lambda: asyncio.sleep(0, len(children(proc.pid)) == 2), 30)
        await until(lambda: ready(port), 60)
        assert first[1] in children(proc.pid)  # the other one was left alone

        ids |= await publish(platform, 20)
        await until(lambda: asyncio.sleep(0, {r.json["id"] for r in receiver.requests} >= ids))

        # One /metrics for both: the sum of every child's deliveries, the killed one's too.
        async def counted() -> bool:
            return delivered_total((await get(port, "/metrics")).text) >= len(ids)

        await until(counted, 10)
        last = await publish(platform, 20)  # in flight when the stop comes
        proc.send_signal(signal.SIGTERM)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert b"worker process died, restarting" in err
    delivered = {str(r.json["id"]) for r in receiver.requests}
    assert delivered >= ids
    # Nothing lost: each event of the last batch was delivered or is back in the queue.
    assert len(delivered & last) + await platform.depth(t.EVENTS_QUEUE) >= len(last)
