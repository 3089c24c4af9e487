"""Acks gathered for a few milliseconds: one `multiple` ack for a run of finished messages.

Acking each message as it finished cost the worker about 40 us of CPU a delivery in the
end-to-end benchmark (measured against a consumer that acks nothing, and see FLUSH_EVERY).
Messages finish roughly in the order they came, so most of the ones finished within a flush
lie below the lowest message still being handled: one `basic.ack(multiple=True)` settles them
all. A finished message above that one (say it waits on a slow receiver) is acked on its own
at the same flush, never held back: held acks would fill the prefetch window.

`AckPlan` is the bookkeeping, without I/O; `Acker` sends what it plans on one channel.
Measured (`make bench`, worker CPU per delivery and two processes' rate) in the README.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiormq
import structlog
from aiormq.abc import ChannelFrame
from pamqp import commands as amqp

log = structlog.get_logger("queue_hooks.broker")


class AckPlan:
    """Which acks to send, on one channel. Every delivered tag is settled exactly once.

    It keeps the tags still being handled (at most the prefetch window), not those settled:
    behind a request that hangs for its schema's whole timeout (up to 10 minutes), a set of
    settled tags would grow by every message acked meanwhile.
    """

    __slots__ = ("done", "open")

    def __init__(self) -> None:
        self.open: set[int] = set()  # delivered, not yet finished or nacked
        self.done: list[int] = []  # finished since the last plan: to be acked

    def deliver(self, tag: int) -> None:
        self.open.add(tag)

    def finish(self, tag: int) -> None:
        self.open.discard(tag)
        self.done.append(tag)

    def settle(self, tag: int) -> None:
        """Settled elsewhere (nacked): it no longer holds back a `multiple` ack."""
        self.open.discard(tag)

    def take(self) -> tuple[int | None, list[int]]:
        """(ack everything up to this tag with `multiple`, or None; then these one by one).

        A `multiple` ack settles every unsettled tag up to its own, so it may only reach below
        the lowest tag still being handled; what finished above that is acked singly."""
        done, self.done = self.done, []
        if not done:
            return None, []
        floor = min(self.open, default=max(done) + 1)
        below = [tag for tag in done if tag < floor]
        singles = sorted(tag for tag in done if tag > floor)
        return (max(below) if below else None), singles


# Acks wait this long to go out together. Per loop turn (no wait) they went out about 2 at a
# time: each ack frees a slot, and the broker sends the next message as soon as a slot frees,
# so both sides handled small reads and writes. 5 ms lets a few dozen acks go at once and the
# broker answer with a burst: worker CPU per delivery 234 -> 197 us (2, 5, 10, 20 ms: 202,
# 197, 196, 202). Delivery is not delayed: the HTTP request was made already. What it costs:
# a crash redelivers what was acked in the last 5 ms (at-least-once, as ever).
FLUSH_EVERY = 0.005


class Acker:
    """Acks on one channel, written every FLUSH_EVERY: each plan as one write, in order.

    `ack` only notes the tag: the message's handler is done with it, and a lost ack costs a
    redelivery at worst (at-least-once, as any ack lost with its connection). `sent` writes
    what is planned and waits until it is written, for a shutdown that closes next.
    """

    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel
        self.plan = AckPlan()
        self._timer: asyncio.TimerHandle | None = None  # the next flush, when one is due
        self._written: asyncio.Future[None] | None = None  # the last plan's write

    def ack(self, tag: int) -> None:
        self.plan.finish(tag)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_EVERY, self._flush)

    async def nack(self, tag: int) -> None:
        await self.channel.basic_nack(tag, requeue=True)
        self.plan.settle(tag)

    async def sent(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            while self._writer_behind():  # noqa: ASYNC110 - aiormq offers nothing to wait on
                await asyncio.sleep(FLUSH_EVERY)
            self._flush()
        if self._written is not None:
            with contextlib.suppress(Exception):
                await self._written

    def _writer_behind(self) -> bool:
        """aiormq's write queue is bounded (FRAME_BUFFER_SIZE): `put_nowait` on a full one
        would raise in a timer callback and lose the plan's acks, leaving those messages
        unacked for as long as the channel lives (each holding a slot of the prefetch window)."""
        return not self.channel.is_closed and self.channel.connection.write_queue.full()

    def _flush(self) -> None:
        self._timer = None
        if self._writer_behind():  # nothing taken: the plan stays whole, in order, for later
            self._timer = asyncio.get_running_loop().call_later(FLUSH_EVERY, self._flush)
            return
        top, singles = self.plan.take()
        frames = [amqp.Basic.Ack(tag, multiple=False) for tag in singles]
        if top is not None:
            frames.insert(0, amqp.Basic.Ack(top, multiple=True))
        if not frames:
            return
        if self.channel.is_closed:  # the broker has requeued them with the channel
            log.warning("could not ack: the channel is closed", messages=len(frames))
            return
        # One frame of them all, queued here and now (not from a task): plans reach the broker
        # in the order they were made, which matters, since a later plan's `multiple` ack may
        # cover tags an earlier one acks singly, and acking a tag twice closes the channel
        # (PRECONDITION_FAILED unknown delivery tag). aiormq has no call for several acks in
        # one write; this is what its own basic_ack does for one.
        written = self.channel.create_future()
        written.add_done_callback(_retrieved)
        payload = ChannelFrame.marshall(self.channel.number, frames, written)
        self.channel.connection.write_queue.put_nowait(payload)
        self._written = written


def _retrieved(future: asyncio.Future[None]) -> None:
    """A write that failed with its connection: the broker redelivers; nothing to report."""
    if not future.cancelled():
        future.exception()
