"""What the hook cache's table costs a hook, read from a real database as the worker reads it.

    python -m bench.cache_memory [N]   # N hooks (default 100,000), as bench/receivers.py seeds

Seeds N hooks in N / 7 queues (bench/receivers.py, cold_start), runs the cache's own query
(worker/store/cache.py, _HOOKS) and decodes it under `tracemalloc`: the bytes a hook the table
keeps, the decode's peak, and how long the query and the decoding take. The figures are in
docs/receivers.md, "A cold start".
"""

from __future__ import annotations

import asyncio
import sys
import time
import tracemalloc

from bench.receivers import seed_cold
from bench.workload import seed
from schemas.queue_types import EVENTS
from worker.settings import Settings
from worker.store import connect
from worker.store.cache import _HOOKS
from worker.store.snapshot import decode_hooks


async def main(count: int) -> None:
    dsn = Settings().database_url
    await seed(dsn, [])
    await seed_cold(dsn, count)
    conn = await connect(dsn)
    try:
        await conn.fetchrow(_HOOKS, EVENTS)  # warm: the rows in PostgreSQL's cache
        started = time.perf_counter()
        row = await conn.fetchrow(_HOOKS, EVENTS)
        query = time.perf_counter() - started
    finally:
        await conn.close()
    assert row is not None
    started = time.perf_counter()
    decode_hooks(row)
    decode = time.perf_counter() - started
    packed = sum(len(row[k]) for k in ("queues", "events", "ids", "schema_ids", "by_id"))
    tracemalloc.start()
    table = decode_hooks(row)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = len(table)
    print(
        f"{n} hooks: the table keeps {kept / n:.1f} bytes a hook ({kept / 2**20:.1f} MiB),"
        f" decoding peaks at {peak / n:.1f}; the query's answer was {packed / n:.1f} a hook;"
        f" the query took {query * 1000:.0f} ms, decoding {decode * 1000:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
