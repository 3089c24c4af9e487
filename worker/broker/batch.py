"""Deliveries on their way to a wait queue, several to a message (group commit).

A delivery that must wait (a retry, a deferral) is settled only once the broker has confirmed its
wait message; until then its event stays unacked. While one publish to a wait queue is out, what
arrives for the same queue and expiration gathers, and goes as one message the moment that publish
is confirmed, or when it is full. Under a trickle nothing waits: a lone delivery is published at
the next turn of the loop, as it always was, and looks as it always did. Under a flood (a dead
receiver's whole share deferred) hundreds share one publish and one confirm, instead of costing
the broker, and so every healthy receiver, one each (README, Performance: one receiver down).

The form of a batch is the codec's (worker/codec.py: pack, unpack): in format 2 the headers of
each delivery travel in the body, in format 1 (the versions before, for a rolling upgrade) in one
AMQP table, which must fit in a frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from worker.codec import JSON_TYPE, header_size, pack

Headers = dict[str, Any]
# (body, headers, content type, tier delay, wait) -> returns once confirmed
Publish = Callable[[bytes, Headers, str, float, float], Coroutine[Any, Any, None]]

MAX_ITEMS = 200
MAX_BYTES = 4 << 20  # of bodies; format 2 adds each delivery's headers, a few KiB at most
# Format 1: every header of a message travels in one frame, 128 KiB by default (frame_max): a
# batch's headers stay well below it, whatever the length of each delivery's last error.
MAX_HEADER_BYTES = 64 << 10


@dataclass
class _Batch:
    in_table: bool  # format 1: the headers go in one AMQP table, which must fit in a frame
    items: list[tuple[Headers, bytes]] = field(default_factory=list)
    # One future per delivery, not one shared: a waiter that gives up (cancels its own) never
    # touches the batch or the others, with no `asyncio.shield` around each.
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    size: int = 0
    header_size: int = 0

    def add(self, headers: Headers, body: bytes, waiter: asyncio.Future[None]) -> None:
        self.items.append((headers, body))
        self.waiters.append(waiter)
        self.size += len(body)
        if self.in_table:
            self.header_size += header_size(headers)

    def settle(self, error: BaseException | None) -> None:
        """Each waiter learns how the publish went (one that gave up already is skipped)."""
        for waiter in self.waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            elif isinstance(error, asyncio.CancelledError):
                waiter.cancel()
            else:
                waiter.set_exception(error)

    @property
    def full(self) -> bool:
        return (
            len(self.items) >= MAX_ITEMS
            or self.size >= MAX_BYTES
            or self.header_size >= MAX_HEADER_BYTES
        )


class WaitPublisher:
    def __init__(self, publish: Publish, fmt: int = 2) -> None:
        self._publish = publish
        self._fmt = fmt  # the wait messages' format (codec.pack)
        self._open: dict[tuple[float, float], _Batch] = {}  # gathering, per queue and expiry
        self._out: dict[tuple[float, float], int] = {}  # publishes awaiting their confirm
        self._tasks: set[asyncio.Task[None]] = set()

    def put(
        self, body: bytes, headers: Headers, tier_delay: float, wait: float
    ) -> asyncio.Future[None]:
        """The delivery's own future: done once the broker holds it, or with what its publish
        raised. A future rather than a coroutine, so that a delivery put off needs no task to
        wait for its batch (docs/receivers.md); cancelling it gives up waiting, never the batch."""
        loop = asyncio.get_running_loop()
        if self._fmt == 1 and b"\n" in body:  # format 1 is one body a line: it goes alone
            return loop.create_task(self._publish(body, headers, JSON_TYPE, tier_delay, wait))
        key = (tier_delay, wait)
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = _Batch(in_table=self._fmt == 1)
            if key not in self._out:
                loop.call_soon(self._send, key, batch)
        waiter = loop.create_future()
        batch.add(headers, body, waiter)
        if batch.full:
            self._send(key, batch)
        return waiter

    def _send(self, key: tuple[float, float], batch: _Batch) -> None:
        if self._open.get(key) is not batch:
            return  # sent already: it filled up before this turn came
        del self._open[key]
        self._out[key] = self._out.get(key, 0) + 1
        task = asyncio.ensure_future(self._publish_batch(key, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_batch(self, key: tuple[float, float], batch: _Batch) -> None:
        try:
            body, headers, content_type = pack(batch.items, self._fmt)
            await self._publish(body, headers, content_type, *key)
        except asyncio.CancelledError as exc:
            batch.settle(exc)
            raise
        except Exception as exc:  # every delivery in it learns, and settles on its own
            batch.settle(exc)
        else:
            batch.settle(None)
        finally:
            if (left := self._out.pop(key) - 1) > 0:
                self._out[key] = left
            elif key in self._open:
                self._send(key, self._open[key])  # what gathered meanwhile goes now
