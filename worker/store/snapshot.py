"""Building the cache's snapshot from what the database sent, pure and without I/O.

The enabled hooks come as columns of packed integers (worker/store/cache.py: PostgreSQL packs
them with `int8send` into one bytea per column), read straight into arrays: 100,000 hooks make
five arrays and no Python object per hook (issue 13, cold start), so a reload after a change
to `hooks` reads them all again (0.2 ms of decoding for 100,000) instead of patching Hook
objects.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from worker.model import EVENT_INDEX, HookTable, Schema
from worker.secrets import SecretError

SecretReader = Callable[[str | None], str | None]
Row = tuple[int, int, str, int]  # hook id, queue id, event, schema id


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


def column(code: str, packed: bytes) -> array[int]:
    """One column as PostgreSQL's `*send` functions pack it: big-endian, fixed width."""
    out = array(code, packed)
    if sys.byteorder == "little":
        out.byteswap()
    return out


def decode_hooks(columns: Mapping[str, Any]) -> HookTable:
    """The table from the query's columns (cache._HOOKS): each packed, in the table's order."""
    return HookTable(
        queues=column("q", columns["queues"]),
        events=column("h", columns["events"]),
        ids=column("q", columns["ids"]),
        schema_ids=column("q", columns["schema_ids"]),
        by_id=column("i", columns["by_id"]),
        schema_set=frozenset(columns["schema_set"]),
    )


def table_of(rows: Iterable[Row]) -> HookTable:
    """The same table from plain rows (tests, and what decode_hooks must equal)."""
    ordered = sorted(rows, key=lambda r: (r[1], r[0]))
    ids = array("q", (r[0] for r in ordered))
    return HookTable(
        queues=array("q", (r[1] for r in ordered)),
        events=array("h", (EVENT_INDEX[r[2]] for r in ordered)),
        ids=ids,
        schema_ids=array("q", (r[3] for r in ordered)),
        by_id=array("i", sorted(range(len(ids)), key=ids.__getitem__)),
        schema_set=frozenset(r[3] for r in ordered),
    )


def shared_variables(rows: Iterable[tuple[int, dict[str, str]]]) -> dict[int, dict[str, str]]:
    """queue id -> its variables, queues with the same variables sharing one dict (read-only
    everywhere: payload.encode_data only reads them), names interned."""
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    out: dict[int, dict[str, str]] = {}
    for queue_id, variables in rows:
        key = tuple(sorted(variables.items()))
        shared = seen.get(key)
        if shared is None:
            shared = seen[key] = {sys.intern(k): v for k, v in variables.items()}
        out[queue_id] = shared
    return out
