"""Building the cache's lookup tables from rows, pure and without I/O.

With 100,000 hooks a full rebuild took about half a second of the event loop on each change
(the README, Performance). So the enabled hooks come as one text, a line per hook (PostgreSQL
builds it faster than asyncpg decodes 100,000 records), and a reload after a change to
`hooks` compares lines with the previous load and only patches what differs: unchanged Hook
objects and lookup entries are kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Any

from schemas.queue_types import EVENTS
from worker.abc import Target
from worker.model import Hook, Schema, Snapshot
from worker.secrets import SecretError

SecretReader = Callable[[str | None], str | None]
Row = tuple[int, int, str, int]  # hook id, queue id, event, schema id

_NAMES: dict[str, str] = {e: e for e in EVENTS}  # one str object per event name
_by_id = attrgetter("id")


def build_schemas(
    rows: Iterable[Mapping[str, Any]], read_secret: SecretReader, previous: Mapping[int, Schema]
) -> dict[int, Schema]:
    """Every schema; an unchanged one keeps its previous object (its hooks can then stay).

    A secret that cannot be read (an `enc:` secret without the key, with another key, or
    damaged) does not stop the load: that schema gets `secret_error` and sends nothing, the
    others are delivered (issue 12, defect 7). A previous secret that cannot be read only
    stops signing with it."""
    out: dict[int, Schema] = {}
    for r in rows:
        secret, error = _read(read_secret, r["secret"])
        previous_secret, _ = _read(read_secret, r["previous_secret"])
        schema = Schema(
            id=r["id"], domain_id=r["domain_id"], name=r["name"], url=r["url"],
            secret=secret,
            headers=tuple((str(k), str(v)) for k, v in r["headers"].items()),
            timeout=r["timeout_ms"] / 1000.0,
            previous_secret=previous_secret,
            previous_until=r["previous_until"],
            secret_error=None if error is None else fix_advice(r["id"], error),
            max_per_second=r["max_per_second"],
        )  # fmt: skip
        old = previous.get(schema.id)
        out[schema.id] = old if old == schema else schema
    return out


def _read(read_secret: SecretReader, stored: str | None) -> tuple[str | None, str | None]:
    try:
        return read_secret(stored), None
    except SecretError as exc:
        return None, str(exc)


def fix_advice(schema_id: int, error: str) -> str:
    """The error line of a schema that cannot sign: what is wrong and what to do."""
    return (
        f"schema {schema_id} cannot sign: {error}; its deliveries are not sent (never"
        f" unsigned): set the QUEUE_HOOKS_SECRET_KEY it was sealed with, or give it a new"
        f" secret (queue-hooks schemas rotate-secret {schema_id})"
    )


def hook_lines(text: str) -> frozenset[str]:
    """`id,queue_id,event,schema_id` lines, `;`-separated (event names hold neither)."""
    return frozenset(text.split(";")) if text else frozenset()


def parse(line: str) -> Row:
    hook_id, queue_id, event, schema_id = line.split(",")
    return int(hook_id), int(queue_id), _NAMES.get(event, event), int(schema_id)


def build_hooks(
    lines: Iterable[str], schemas: Mapping[int, Schema], targets: Mapping[int, Target]
) -> tuple[dict[tuple[int, str], tuple[Hook, ...]], dict[int, Hook]]:
    by_event: defaultdict[tuple[int, str], list[Hook]] = defaultdict(list)
    by_id: dict[int, Hook] = {}
    for hook_id, queue_id, event, schema_id in sorted(map(parse, lines)):
        hook = Hook(hook_id, queue_id, event, schemas[schema_id], targets[schema_id])
        by_event[(queue_id, event)].append(hook)
        by_id[hook_id] = hook
    return {k: tuple(v) for k, v in by_event.items()}, by_id


def patch_hooks(
    before: Snapshot,
    new: frozenset[str],
    schemas: Mapping[int, Schema],
    targets: Mapping[int, Target],
) -> tuple[dict[tuple[int, str], tuple[Hook, ...]], dict[int, Hook]]:
    """The lookup tables of `new`, made from those of `before` by changing only what differs.
    Schemas must be unchanged since `before` (else build_hooks)."""
    old = before.rows
    by_event = dict(before.by_event)
    by_id = dict(before.by_id)
    touched: dict[tuple[int, str], dict[int, Hook]] = {}

    def entries(key: tuple[int, str]) -> dict[int, Hook]:
        if key not in touched:
            touched[key] = {h.id: h for h in by_event.get(key, ())}
        return touched[key]

    for hook_id, queue_id, event, _schema_id in map(parse, old - new):
        del by_id[hook_id]
        entries((queue_id, event)).pop(hook_id, None)
    for hook_id, queue_id, event, schema_id in map(parse, new - old):
        hook = Hook(hook_id, queue_id, event, schemas[schema_id], targets[schema_id])
        by_id[hook_id] = hook
        entries((queue_id, event))[hook_id] = hook
    for key, hooks in touched.items():
        if hooks:
            by_event[key] = tuple(sorted(hooks.values(), key=_by_id))
        else:
            by_event.pop(key, None)
    return by_event, by_id
