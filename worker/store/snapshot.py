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
from worker.model import Hook, Schema, Snapshot

SecretReader = Callable[[str | None], str | None]
Row = tuple[int, int, str, int]  # hook id, queue id, event, schema id

_NAMES: dict[str, str] = {e: e for e in EVENTS}  # one str object per event name
_by_id = attrgetter("id")


def build_schemas(
    rows: Iterable[Mapping[str, Any]], read_secret: SecretReader, previous: Mapping[int, Schema]
) -> dict[int, Schema]:
    """Every schema; an unchanged one keeps its previous object (its hooks can then stay)."""
    out: dict[int, Schema] = {}
    for r in rows:
        schema = Schema(
            id=r["id"], domain_id=r["domain_id"], name=r["name"], url=r["url"],
            secret=read_secret(r["secret"]),
            headers=tuple((str(k), str(v)) for k, v in r["headers"].items()),
            timeout=r["timeout_ms"] / 1000.0,
            previous_secret=read_secret(r["previous_secret"]),
            previous_until=r["previous_until"],
        )  # fmt: skip
        old = previous.get(schema.id)
        out[schema.id] = old if old == schema else schema
    return out


def hook_lines(text: str) -> set[str]:
    """`id,queue_id,event,schema_id` lines, `;`-separated (event names hold neither)."""
    return set(text.split(";")) if text else set()


def parse(line: str) -> Row:
    hook_id, queue_id, event, schema_id = line.split(",")
    return int(hook_id), int(queue_id), _NAMES.get(event, event), int(schema_id)


def build_hooks(
    lines: Iterable[str], schemas: Mapping[int, Schema]
) -> tuple[dict[tuple[int, str], tuple[Hook, ...]], dict[int, Hook]]:
    by_event: defaultdict[tuple[int, str], list[Hook]] = defaultdict(list)
    by_id: dict[int, Hook] = {}
    for hook_id, queue_id, event, schema_id in sorted(map(parse, lines)):
        hook = Hook(id=hook_id, queue_id=queue_id, event=event, schema=schemas[schema_id])
        by_event[(queue_id, event)].append(hook)
        by_id[hook_id] = hook
    return {k: tuple(v) for k, v in by_event.items()}, by_id


def patch_hooks(
    before: Snapshot, old: set[str], new: set[str], schemas: Mapping[int, Schema]
) -> tuple[dict[tuple[int, str], tuple[Hook, ...]], dict[int, Hook]]:
    """The lookup tables of `new`, made from those of `old` by changing only what differs.
    Schemas must be unchanged since `before` (else build_hooks)."""
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
        hook = Hook(id=hook_id, queue_id=queue_id, event=event, schema=schemas[schema_id])
        by_id[hook_id] = hook
        entries((queue_id, event))[hook_id] = hook
    for key, hooks in touched.items():
        if hooks:
            by_event[key] = tuple(sorted(hooks.values(), key=_by_id))
        else:
            by_event.pop(key, None)
    return by_event, by_id
