"""The cache's incremental patch gives exactly what a full build of the same rows gives."""

from __future__ import annotations

import random
from typing import Any

from worker.model import Schema, Snapshot
from worker.store.snapshot import build_hooks, hook_lines, patch_hooks

SCHEMAS = {i: Schema(i, 1, f"s{i}", f"https://example.com/{i}", None, (), 10.0) for i in (1, 2, 3)}
TARGETS: dict[int, Any] = {i: f"target {i}" for i in SCHEMAS}
EVENTS = ("joined", "leaving", "missed")


def rows(rng: random.Random, count: int) -> set[str]:
    return {
        f"{i},{rng.randint(1, 20)},{rng.choice(EVENTS)},{rng.choice(list(SCHEMAS))}"
        for i in rng.sample(range(1, 400), count)
    }


def test_patching_equals_rebuilding_across_many_changes() -> None:
    rng = random.Random(5)
    old = rows(rng, 150)
    by_event, by_id = build_hooks(old, SCHEMAS, TARGETS)
    for _ in range(30):
        new = set(rng.sample(sorted(old), len(old) - 10)) | rows(rng, 12)
        # the same id may come back with another queue or event: an UPDATE of the hook
        ids = [r.split(",")[0] for r in new]
        new = {r for r in new if ids.count(r.split(",")[0]) == 1}
        before = Snapshot(1, by_event, by_id, rows=frozenset(old))
        by_event, by_id = patch_hooks(before, frozenset(new), SCHEMAS, TARGETS)
        assert (by_event, by_id) == build_hooks(new, SCHEMAS, TARGETS)
        assert before.by_event is not by_event  # the old snapshot is never changed in place
        old = new


def test_hook_lines_split_the_text_postgresql_builds() -> None:
    assert hook_lines("1,7,leaving,3;2,7,joined,3") == {"1,7,leaving,3", "2,7,joined,3"}
    assert hook_lines("") == set()
    by_event, by_id = build_hooks(hook_lines("2,7,joined,3;1,7,joined,2"), SCHEMAS, TARGETS)
    assert [h.id for h in by_event[(7, "joined")]] == [1, 2]  # in id order, as before
    assert by_id[1].schema is SCHEMAS[2]
