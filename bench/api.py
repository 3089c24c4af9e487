"""`make bench`, its own phase: one `queue-hooks api` process against a queue of 100,000 hooks.

Search latency (p50 / p99 of `GET .../hooks?page=N`, page 1, the middle and the last page)
and the requests/s of a mixed load (4 reads to 1 patch, 32 in flight)."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.workload import start_empty
from worker.api import rights
from worker.store import admin, connect

QUEUE = 900_001


async def seed(dsn: str, hooks: int) -> str:
    """Queue 900001 (offline queue: 7 events) with `hooks` hooks; returns an admin token."""
    conn = await connect(dsn)
    try:
        await start_empty(conn)
        await conn.execute(
            "INSERT INTO queue_hooks.queues (id, domain_id, name, type) VALUES ($1, 1, 'bench', 0)",
            QUEUE,
        )
        schemas = -(-hooks // 7)
        await conn.execute(
            "INSERT INTO queue_hooks.schemas (domain_id, name, url)"
            " SELECT 1, 'bench ' || n, 'https://bench.example/' || n FROM generate_series(1, $1) n",
            schemas,
        )
        await conn.execute(
            """
            INSERT INTO queue_hooks.hooks (queue_id, event, schema_id)
            SELECT $1, e, s.id FROM queue_hooks.schemas s,
                   unnest(ARRAY['joined','answered','offering','bridged','missed','leaving',
                                'processing']) e
            ORDER BY s.id, e LIMIT $2
            """,
            QUEUE, hooks,
        )  # fmt: skip
        # VACUUM too, as autovacuum soon does after such an insert: without it the deep pages'
        # index-only scans visit the heap, and whether autovacuum came first made runs differ.
        await conn.execute("VACUUM ANALYZE queue_hooks.hooks")
        token = rights.new_token()
        await admin.add_token(conn, 1, "bench", True, rights.digest(token))
        return token
    finally:
        await conn.close()


async def start_api(port: int) -> asyncio.subprocess.Process:
    env = dict(os.environ, QUEUE_HOOKS_API_PORT=str(port), QUEUE_HOOKS_LOG_LEVEL="warning")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "api", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    async with httpx.AsyncClient() as client:
        for _ in range(400):
            try:
                await client.get(f"http://127.0.0.1:{port}/api/openapi.json")
                return proc
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("queue-hooks api did not start")


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


async def run(dsn: str, port: int, hooks: int, samples: int, seconds: float) -> dict[str, Any]:
    token = await seed(dsn, hooks)
    proc = await start_api(port)
    figures: dict[str, Any] = {"api_hooks": hooks}
    base = f"http://127.0.0.1:{port}/api/call_center/queues/{QUEUE}/hooks"
    last = -(-hooks // 40)
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(headers={"X-Webitel-Access": token}, limits=limits) as c:
            for name, page in (("first", 1), ("middle", last // 2), ("last", last)):
                took = []
                for _ in range(samples):
                    started = time.perf_counter()
                    answer = await c.get(base, params={"page": page, "size": 40})
                    took.append(time.perf_counter() - started)
                    assert answer.status_code == 200 and answer.json()["items"], answer.text
                figures[f"api_page_{name}_p50_ms"] = _ms(took, 0.5)
                figures[f"api_page_{name}_p99_ms"] = _ms(took, 0.99)
            used = _cpu_seconds(proc.pid)
            figures["api_mixed_per_s"], done = await _mixed(c, base, last, hooks, seconds)
            # The API's own CPU per request: what one process could serve were PostgreSQL and
            # this load generator not sharing its cores (on 2 cores they do).
            figures["api_cpu_ms_per_request"] = round(
                (_cpu_seconds(proc.pid) - used) * 1000 / max(done, 1), 3
            )
    finally:
        proc.terminate()
        await proc.wait()
    return figures


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _mixed(
    c: httpx.AsyncClient, base: str, last: int, hooks: int, seconds: float
) -> tuple[int, int]:
    """Four searches of a random page to one patch of a random hook, 32 in flight."""
    done, errors, until = 0, 0, time.monotonic() + seconds
    rng = random.Random(7)

    async def one() -> None:
        nonlocal done, errors
        while time.monotonic() < until:
            if rng.random() < 0.8:
                r = await c.get(base, params={"page": rng.randint(1, last), "size": 40})
            else:
                hook = rng.randint(1, hooks)
                r = await c.patch(f"{base}/{hook}", json={"enabled": rng.random() < 0.5})
            done += 1
            errors += r.status_code != 200

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(32)))
    if errors:
        print(f"  api mixed load: {errors} answers were not 200", file=sys.stderr)
    return round(done / (time.monotonic() - started)), done


ROWS = [
    ("api: hooks in the searched queue", "api_hooks", "hooks", None),
    ("api: page 1, p50", "api_page_first_p50_ms", "ms", None),
    ("api: page 1, p99", "api_page_first_p99_ms", "ms", None),
    ("api: middle page, p50", "api_page_middle_p50_ms", "ms", None),
    ("api: middle page, p99", "api_page_middle_p99_ms", "ms", None),
    ("api: last page, p50", "api_page_last_p50_ms", "ms", None),
    ("api: last page, p99", "api_page_last_p99_ms", "ms", None),
    ("api: mixed 4 reads : 1 patch", "api_mixed_per_s", "requests/s", None),
    ("api: its CPU per mixed request", "api_cpu_ms_per_request", "ms", None),
]
