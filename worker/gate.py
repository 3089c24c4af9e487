"""How many requests one schema may have in flight, and who waits for a slot or is deferred.

A schema gets at most `limit` requests in flight. A delivery beyond that waits in memory, in
turn, while the schema is making progress (a request of it finished, or it became busy, less
than `stall` seconds ago): a receiver that is slow but answering keeps the prefetch window
and so pushes back on the broker, nothing is deferred needlessly. A schema that makes no
progress (its requests hang until their timeout) has its waiting deliveries, and any new one,
deferred at once: they go back to the broker through a wait tier instead of filling the
window that the other schemas need. Measured in the README, Performance (slow receiver, one
receiver down).

The limit is not fixed: the pipeline sets it before each entry from the schema's adaptive
limit and its fair share of the prefetch window (worker/concurrency.py). A limit lowered below
what is in flight lets no waiter in until enough requests finished; a limit raised lets the
waiters in at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class Gate:
    __slots__ = ("busy", "limit", "progress", "reported", "stall", "waiters")

    def __init__(self, limit: int, stall: float) -> None:
        self.limit = limit
        self.stall = stall
        self.busy = 0  # requests in flight, counting a slot handed to a waiter
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.progress = time.monotonic()
        self.reported = False  # this stall was logged (once per stall, not per deferral)

    def resize(self, limit: int) -> None:
        self.limit = limit
        while self.busy < limit and self.waiters:
            turn = self.waiters.popleft()
            if not turn.done():
                self.busy += 1
                turn.set_result(None)

    def first_report(self) -> bool:
        """True once per stall: when to log it."""
        first, self.reported = not self.reported, True
        return first

    def stalled(self) -> bool:
        return time.monotonic() - self.progress > self.stall

    def _free(self) -> bool:
        """A slot is free now, and nobody waits ahead."""
        return self.busy < self.limit and not self.waiters

    def refuses(self) -> bool:
        """Would `enter` return False at once (no slot free, and stalled)?"""
        return not self._free() and self.stalled()

    async def enter(self) -> bool:
        """True: a slot is ours (release it after). False: the schema is stalled; defer."""
        if self._free():
            if self.busy == 0:
                self.progress = time.monotonic()  # idle until now: not a stall
            self.busy += 1
            return True
        while not self.stalled():
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiters.append(turn)
            try:
                left = self.stall - (time.monotonic() - self.progress)
                await asyncio.wait({turn}, timeout=max(left, 0.001))
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self.release()  # handed a slot while being cancelled: pass it on
                raise
            finally:
                if not turn.done():
                    self.waiters.remove(turn)
                    turn.cancel()
            if not turn.cancelled():
                return True
        return False

    def release(self) -> None:
        self.progress = time.monotonic()
        self.reported = False
        while self.waiters and self.busy <= self.limit:
            turn = self.waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes on: busy stays as it is
                return
        self.busy -= 1
