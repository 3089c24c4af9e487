"""The cache's hook table: what PostgreSQL packs decodes to the table of the same rows, and
its lookups find exactly the enabled hooks a plain scan of the rows finds."""

from __future__ import annotations

import random
import struct
from typing import Any

from schemas.queue_types import EVENTS
from worker.model import Schema, Snapshot
from worker.store.snapshot import Row, decode_hooks, shared_variables, table_of

SCHEMAS = {i: Schema(i, 1, f"s{i}", f"https://example.com/{i}", None, (), 10.0) for i in (1, 2, 3)}
TARGETS: dict[int, Any] = {i: f"target {i}" for i in SCHEMAS}


def rows(rng: random.Random, count: int) -> list[Row]:
    return [
        (i, rng.randint(-3, 20), rng.choice(EVENTS[:3]), rng.choice(list(SCHEMAS)))
        for i in rng.sample(range(1, 400), count)
    ]


def packed(found: list[Row]) -> dict[str, Any]:
    """What cache._HOOKS answers for these rows: big-endian columns, as int8send packs them."""
    ordered = sorted(found, key=lambda r: (r[1], r[0]))
    by_id = sorted(range(len(ordered)), key=lambda i: ordered[i][0])
    return {
        "queues": b"".join(struct.pack(">q", r[1]) for r in ordered),
        "events": b"".join(struct.pack(">h", EVENTS.index(r[2])) for r in ordered),
        "ids": b"".join(struct.pack(">q", r[0]) for r in ordered),
        "schema_ids": b"".join(struct.pack(">q", r[3]) for r in ordered),
        "by_id": b"".join(struct.pack(">i", i) for i in by_id),
        "schema_set": sorted({r[3] for r in ordered}),
    }


def test_the_packed_columns_decode_to_the_table_of_the_rows() -> None:
    found = rows(random.Random(3), 150)
    assert decode_hooks(packed(found)) == table_of(found)
    assert len(decode_hooks(packed([]))) == 0


def test_lookups_find_what_a_scan_of_the_rows_finds() -> None:
    rng = random.Random(5)
    for _ in range(20):
        found = rows(rng, rng.randint(0, 200))
        snapshot = Snapshot(1, decode_hooks(packed(found)), schemas=SCHEMAS, targets=TARGETS)
        for queue_id in range(-4, 22):
            for event in (*EVENTS, "nonsense"):
                want = sorted(r[0] for r in found if r[1] == queue_id and r[2] == event)
                got = snapshot.hooks_for(queue_id, event)
                assert [h.id for h in got] == want  # in hook id order
                assert all(h.queue_id == queue_id and h.event == event for h in got)
        known = {r[0]: r for r in found}
        for hook_id in range(0, 402):
            hook = snapshot.hook(hook_id)
            if hook_id not in known:
                assert hook is None
                continue
            assert hook is not None
            _, queue_id, event, schema_id = known[hook_id]
            assert (hook.queue_id, hook.event, hook.schema) == (queue_id, event, SCHEMAS[schema_id])
            assert hook.target == TARGETS[schema_id]


def test_remembered_lookups_stay_bounded() -> None:
    snapshot = Snapshot(1, table_of([(1, 7, "joined", 2)]), schemas=SCHEMAS, targets=TARGETS)
    for queue_id in range(10_000):
        snapshot.hooks_for(queue_id, "joined")
    assert [h.id for h in snapshot.hooks_for(7, "joined")] == [1]
    assert len(snapshot._made) <= 4096


def test_queues_with_the_same_variables_share_one_dict() -> None:
    out = shared_variables([(1, {"a": "x"}), (2, {"a": "x"}), (3, {"a": "y"})])
    assert out[1] is out[2]
    assert out == {1: {"a": "x"}, 2: {"a": "x"}, 3: {"a": "y"}}
