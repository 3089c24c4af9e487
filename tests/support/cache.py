"""Waiting for a worker's hook cache to read a committed change, instead of sleeping 2 s.

The contract gives the cache 2 seconds (§2); the tests wait for the reload itself: every commit
bumps `queue_hooks.revision`, and each reload reports the revision it read to its listeners.
"""

from __future__ import annotations

import weakref

from tests.support.helpers import Conn, holds
from worker.app import Worker
from worker.model import Snapshot

_LOADED: weakref.WeakKeyDictionary[Worker, list[int]] = weakref.WeakKeyDictionary()


def watch(worker: Worker) -> None:
    """Records the revision of every reload; called before the worker starts."""
    loaded = _LOADED.setdefault(worker, [-1])

    def record(snapshot: Snapshot, _took: float) -> None:
        loaded[0] = max(loaded[0], snapshot.revision)

    worker.cache.listeners.append(record)


async def caught_up(worker: Worker, db: Conn) -> None:
    """Returns once `worker`'s cache holds every change committed so far on `db`."""
    committed: int = await db.fetchval("SELECT n FROM queue_hooks.revision")
    loaded = _LOADED[worker]
    await holds(lambda: loaded[0] >= committed)
