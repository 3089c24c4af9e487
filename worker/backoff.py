"""The one back-off of the worker: waiting out a broker or a database that is down.

Used by the broker's connect, the database's connect and the hook cache's sync loop, which
each had a hand-written loop of their own. Only a transient error (worker/errors.py) is waited
out; anything else is raised at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import structlog

from worker.errors import is_transient, one_line

log = structlog.get_logger("queue_hooks.backoff")

T = TypeVar("T")
FIRST, CEILING = 0.5, 5.0


def delays(first: float = FIRST, ceiling: float = CEILING) -> Iterator[float]:
    """0.5, 1, 2, 4, 5, 5, ... seconds."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, ceiling)


async def keep_trying(
    action: Callable[[], Awaitable[T]],
    message: str,
    *,
    attempts: int | None = None,
    on_failure: Callable[[], Awaitable[None]] | None = None,
    logger: structlog.typing.FilteringBoundLogger = log,
) -> T:
    """`action()` until it returns, waiting between tries while it fails transiently.

    `message` is the warning logged at each failure; `attempts` bounds the tries (the last
    error is raised); `on_failure` runs before each wait (e.g. to drop a dead connection)."""
    waits = delays()
    tried = 0
    while True:
        try:
            return await action()
        except Exception as exc:
            tried += 1
            if not is_transient(exc) or (attempts is not None and tried >= attempts):
                raise
            delay = next(waits)
            logger.warning(message, error=one_line(exc), retry_in=delay)
            if on_failure is not None:
                await on_failure()
            await asyncio.sleep(delay)
