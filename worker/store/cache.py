"""The in-memory hook cache, kept fresh by LISTEN/NOTIFY, so no event costs a SQL query.

Contract §2: a committed change takes effect for every event consumed 2 seconds later. A
NOTIFY makes us reload at once; polling the one-row revision every `poll` seconds catches a
notification lost with a dropped connection. While the database is unreachable the cache
stops vouching for itself and events wait for it instead of being delivered on stale hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from worker.errors import is_transient, one_line
from worker.model import Hook, Schema, Snapshot
from worker.store.db import connect

log = structlog.get_logger("queue_hooks.cache")

CHANNEL = "queue_hooks_changed"
# A database that stops answering without closing the connection (frozen, or a network that
# drops packets) must still end the cache's vouching: every query has a deadline.
QUERY_TIMEOUT = 5.0

_HOOKS = """
SELECT h.id, h.queue_id, h.event, s.id AS schema_id, s.domain_id, s.name, s.url, s.secret,
       s.headers, s.timeout_ms, s.previous_secret,
       extract(epoch FROM s.previous_secret_until)::float8 AS previous_until
FROM queue_hooks.hooks h JOIN queue_hooks.schemas s ON s.id = h.schema_id
WHERE h.enabled
ORDER BY h.id
"""
_QUEUES = "SELECT id, variables FROM queue_hooks.queues WHERE variables <> '{}'::jsonb"

SecretReader = Callable[[str | None], str | None]
Listener = Callable[[Snapshot, float], None]


def build_snapshot(
    revision: int, hooks: list[Any], queues: list[Any], read_secret: SecretReader
) -> Snapshot:
    """Pure: rows in, lookup tables out. Schemas are shared between their hooks."""
    from schemas.events import coerce_variables

    schemas: dict[int, Schema] = {}
    by_event: defaultdict[tuple[int, str], list[Hook]] = defaultdict(list)
    by_id: dict[int, Hook] = {}
    for r in hooks:
        schema = schemas.get(r["schema_id"])
        if schema is None:
            schema = schemas[r["schema_id"]] = Schema(
                id=r["schema_id"], domain_id=r["domain_id"], name=r["name"], url=r["url"],
                secret=read_secret(r["secret"]),
                headers=tuple((str(k), str(v)) for k, v in r["headers"].items()),
                timeout=r["timeout_ms"] / 1000.0,
                previous_secret=read_secret(r["previous_secret"]),
                previous_until=r["previous_until"],
            )  # fmt: skip
        hook = Hook(id=r["id"], queue_id=r["queue_id"], event=r["event"], schema=schema)
        by_event[(hook.queue_id, hook.event)].append(hook)
        by_id[hook.id] = hook
    return Snapshot(
        revision=revision,
        by_event={k: tuple(v) for k, v in by_event.items()},
        by_id=by_id,
        queue_variables={r["id"]: coerce_variables(r["variables"]) for r in queues},
    )


class HookCache:
    def __init__(self, dsn: str, poll: float, read_secret: SecretReader) -> None:
        self._dsn = dsn
        self._poll = poll
        self._read_secret = read_secret
        self._snapshot = Snapshot(revision=-1)
        self._fresh = asyncio.Event()
        self._poke = asyncio.Event()
        self._conn: asyncpg.Connection[Any] | None = None
        self.listeners: list[Listener] = []  # metrics: called after each reload

    # -- what the pipeline asks, all in memory -------------------------------------------
    def hooks_for(self, queue_id: int, event: str) -> tuple[Hook, ...]:
        return self._snapshot.by_event.get((queue_id, event), ())

    def hook(self, hook_id: int) -> Hook | None:
        return self._snapshot.by_id.get(hook_id)

    def queue_variables(self, queue_id: int) -> dict[str, str]:
        return self._snapshot.queue_variables.get(queue_id, {})

    @property
    def size(self) -> int:
        return len(self._snapshot.by_id)

    @property
    def ready(self) -> bool:
        return self._fresh.is_set()

    async def wait_fresh(self) -> None:
        if not self._fresh.is_set():
            await self._fresh.wait()

    # -- keeping it fresh -----------------------------------------------------------------
    async def run(self) -> None:
        """Runs until cancelled; never raises for an outage, only waits it out."""
        delay = 0.5
        while True:
            try:
                await self._sync_forever()
            except asyncio.CancelledError:
                await self._drop_connection()
                raise
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._fresh.clear()
                log.warning("database unreachable, events wait", error=one_line(exc))
                await self._drop_connection()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:  # pragma: no cover - _sync_forever only returns by raising
                delay = 0.5

    async def _sync_forever(self) -> None:
        conn = await connect(self._dsn)
        self._conn = conn
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(lambda _c: self._poke.set())
        while True:
            if conn.is_closed():
                raise ConnectionError("database connection closed")
            revision = await conn.fetchval(
                "SELECT n FROM queue_hooks.revision", timeout=QUERY_TIMEOUT
            )
            if revision != self._snapshot.revision:
                await self._load(conn)
            self._fresh.set()
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self._poll)

    async def _load(self, conn: asyncpg.Connection[Any]) -> None:
        started = time.perf_counter()
        async with (
            asyncio.timeout(QUERY_TIMEOUT * 3),
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            revision = await conn.fetchval("SELECT n FROM queue_hooks.revision")
            hooks = await conn.fetch(_HOOKS)
            queues = await conn.fetch(_QUEUES)
        self._snapshot = build_snapshot(revision, hooks, queues, self._read_secret)
        took = time.perf_counter() - started
        log.info("hook cache loaded", revision=revision, hooks=len(hooks), seconds=round(took, 3))
        for listener in self.listeners:
            listener(self._snapshot, took)

    def _on_notify(self, *_args: object) -> None:
        self._poke.set()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
