"""The in-memory hook cache, kept fresh by LISTEN/NOTIFY, so no event costs a SQL query.

Contract §2: a committed change takes effect for every event consumed 2 seconds later. A
NOTIFY makes us reload at once; polling the one-row revision every `poll` seconds catches a
notification lost with a dropped connection. While the database is unreachable the cache
stops vouching for itself and events wait for it instead of being delivered on stale hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from schemas.events import variables_from_text
from schemas.queue_types import EVENTS
from worker.abc import Target
from worker.backoff import keep_trying
from worker.errors import is_transient, one_line
from worker.model import Hook, HookTable, Schema, Snapshot
from worker.store.admin import disable_hook
from worker.store.db import connect
from worker.store.snapshot import SecretReader, build_schemas, decode_hooks, shared_variables

log = structlog.get_logger("queue_hooks.cache")

CHANNEL = "queue_hooks_changed"
# A database that stops answering without closing the connection (frozen, or a network that
# drops packets) must still end the cache's vouching: every query has a deadline.
QUERY_TIMEOUT = 5.0

# Every enabled hook as packed columns (worker/store/snapshot.py), in one row: PostgreSQL
# packs 100,000 hooks in about 0.2 s of its own time (each ordered aggregate sorts: PostgreSQL
# 15 does not share the sorts), the event loop only waiting, and they arrive as five byte
# strings, not 100,000 records or lines of text (issue 13, cold start; bench/cache_memory.py).
# Rows in (queue id, hook id) order; `by_id` gives the rows in hook id order. $1 is EVENTS: an
# event's number is its place in it.
_HOOKS = """
SELECT coalesce(string_agg(int8send(queue_id), '' ORDER BY pos), '') AS queues,
       coalesce(string_agg(int2send(event), '' ORDER BY pos), '') AS events,
       coalesce(string_agg(int8send(id), '' ORDER BY pos), '') AS ids,
       coalesce(string_agg(int8send(schema_id), '' ORDER BY pos), '') AS schema_ids,
       coalesce(string_agg(int4send(pos), '' ORDER BY id), '') AS by_id,
       coalesce(array_agg(DISTINCT schema_id), '{}') AS schema_set
FROM (SELECT id, queue_id, schema_id, (array_position($1::text[], event) - 1)::int2 AS event,
             (row_number() OVER (ORDER BY queue_id, id) - 1)::int4 AS pos
      FROM queue_hooks.hooks WHERE enabled AND event = ANY($1::text[])) h
"""
_SCHEMAS = """
SELECT id, domain_id, name, url, secret, headers, timeout_ms, previous_secret,
       extract(epoch FROM previous_secret_until)::float8 AS previous_until,
       max_per_second::float8 AS max_per_second
FROM queue_hooks.schemas
"""
# The variables as text: their numbers as jsonb writes them (schemas.events.variables_from_text).
_QUEUES = (
    "SELECT id, variables::text AS variables FROM queue_hooks.queues WHERE variables <> '{}'::jsonb"
)
# What a notification names (the changed table, see deploy/sql) and what must then be read
# again. A queue deleted takes its hooks with it, so `queues` reads the hooks too.
_RELOADS = {"hooks": {"hooks"}, "schemas": {"schemas", "hooks"}, "queues": {"queues", "hooks"}}
_ALL = frozenset({"hooks", "schemas", "queues"})

Listener = Callable[[Snapshot, float], None]
TargetBuilder = Callable[[Schema], Target]


class HookCache:
    """Its whole state is one immutable Snapshot, swapped whole at each load."""

    def __init__(
        self, dsn: str, poll: float, read_secret: SecretReader, build_target: TargetBuilder
    ) -> None:
        self._dsn = dsn
        self._poll = poll
        self._read_secret = read_secret
        self._build_target = build_target
        self._snapshot = Snapshot(revision=-1)
        self._pending: set[str] = set()  # tables named by notifications not yet reloaded
        self._fresh = asyncio.Event()
        self._poke = asyncio.Event()
        self._conn: asyncpg.Connection[Any] | None = None
        self.listeners: list[Listener] = []  # metrics: called after each reload

    # -- what the pipeline asks, all in memory -------------------------------------------
    def hooks_for(self, queue_id: int, event: str) -> tuple[Hook, ...]:
        return self._snapshot.hooks_for(queue_id, event)

    def hook(self, hook_id: int) -> Hook | None:
        return self._snapshot.hook(hook_id)

    def queue_variables(self, queue_id: int) -> dict[str, str]:
        return self._snapshot.queue_variables.get(queue_id, {})

    @property
    def size(self) -> int:
        return len(self._snapshot.hooks)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    async def disable(self, hook_id: int) -> None:
        """After a 410. Best effort: if the database is away, the next 410 disables it."""
        try:
            await disable_hook(self._dsn, hook_id)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("could not disable hook after 410", hook_id=hook_id, error=one_line(exc))

    @property
    def ready(self) -> bool:
        return self._fresh.is_set()

    async def wait_fresh(self) -> None:
        if not self._fresh.is_set():
            await self._fresh.wait()

    # -- keeping it fresh -----------------------------------------------------------------
    async def run(self) -> None:
        """Runs until cancelled; never raises for an outage, only waits it out."""
        try:
            await keep_trying(
                self._sync_forever, "database unreachable, events wait", on_failure=self._lost,
                logger=log,
            )  # fmt: skip
        finally:
            await self._drop_connection()

    async def _lost(self) -> None:
        self._fresh.clear()  # events wait rather than go out on hooks that may be stale
        await self._drop_connection()

    async def _sync_forever(self) -> None:
        conn = await connect(self._dsn)
        self._conn = conn
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(lambda _c: self._poke.set())
        full = True  # on (re)connecting: notifications may have been missed meanwhile
        while True:
            if conn.is_closed():
                raise ConnectionError("database connection closed")
            self._poke.clear()  # before reading: a notification during the load pokes again
            pending, self._pending = self._pending, set()
            revision = await conn.fetchval(
                "SELECT n FROM queue_hooks.revision", timeout=QUERY_TIMEOUT
            )
            if full or revision != self._snapshot.revision or pending:
                # A change seen only by the poll (no notification) reloads everything.
                await self._load(conn, _ALL if full or not pending else _tables(pending))
            full = False
            self._fresh.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self._poll)

    async def _load(self, conn: asyncpg.Connection[Any], tables: frozenset[str]) -> None:
        """Reads `tables` again, in one consistent snapshot; the others are unchanged.

        A change committed after our notification but visible to this read is read now, and
        read again when its own notification arrives: never missed, at worst read twice."""
        started = time.perf_counter()
        before = self._snapshot
        async with (
            asyncio.timeout(QUERY_TIMEOUT * 3),
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            revision = await conn.fetchval("SELECT n FROM queue_hooks.revision")
            found = await conn.fetchrow(_HOOKS, EVENTS) if "hooks" in tables else None
            hooks = decode_hooks(found) if found is not None else before.hooks
            if "schemas" not in tables and not hooks.schema_set <= before.schemas.keys():
                tables = tables | {"schemas"}  # a new hook of a schema we never read
            schemas = await conn.fetch(_SCHEMAS) if "schemas" in tables else None
            queues = await conn.fetch(_QUEUES) if "queues" in tables else None
        variables = before.queue_variables
        if queues is not None:
            variables = shared_variables(
                (r["id"], variables_from_text(r["variables"])) for r in queues
            )
        self._snapshot = self._next(before, revision, hooks, schemas, variables)
        if before.revision < 0:
            # The first load's objects (the schemas, targets and queue variables; the hooks
            # themselves are arrays, no objects) live as long as the process: out of the
            # collector's way, as app.tune_gc does for start-up's (issue 13, cold start).
            gc.freeze()
        took = time.perf_counter() - started
        log.info(
            "hook cache loaded", revision=revision, hooks=len(self._snapshot.hooks),
            seconds=round(took, 3), tables=",".join(sorted(tables)),
        )  # fmt: skip
        for listener in self.listeners:
            listener(self._snapshot, took)

    def _next(
        self, before: Snapshot, revision: int, hooks: HookTable, schema_rows: list[Any] | None,
        variables: dict[int, dict[str, str]],
    ) -> Snapshot:  # fmt: skip
        """The snapshot after this load, built from `before` and what was read. Hook objects
        are made on lookup from the snapshot's own schemas and targets, so a changed schema
        changes nothing else."""
        schemas, targets = before.schemas, before.targets
        if schema_rows is not None:
            schemas = build_schemas(schema_rows, self._read_secret, before.schemas)
            targets = {
                k: before.targets[k] if before.schemas.get(k) is v else self._build_target(v)
                for k, v in schemas.items()
            }
            _report_unsigned(before, schemas)
        return Snapshot(revision, hooks, variables, schemas, targets)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._pending.add(str(payload))
        self._poke.set()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


def _report_unsigned(before: Snapshot, schemas: dict[int, Schema]) -> None:
    """Once per schema (not per delivery): when its secret becomes unreadable, and when it is
    readable again."""
    for schema in schemas.values():
        old = before.schemas.get(schema.id)
        was = old.secret_error if old is not None else None
        if schema.secret_error and schema.secret_error != was:
            log.error("schema cannot sign", schema_id=schema.id, error=schema.secret_error)
        elif was and not schema.secret_error:
            log.info("schema signs again", schema_id=schema.id)


def _tables(names: set[str]) -> frozenset[str]:
    """What to read again for the tables notified; anything unexpected: everything."""
    out: set[str] = set()
    for name in names:
        out |= _RELOADS.get(name, _ALL)
    return frozenset(out)
