"""The one place a message is settled (FastStream's one ack / nack / reject mapping, dramatiq's
retries middleware): handlers decide, this module carries out.

- A delivery's outcome (worker/policy.py: Delivered, Wait, Dead) becomes a confirmed publish to
  a wait queue or to the dead-letter queue, and the metrics and the log line of it.
- A message's handler returning means every delivery in it is settled: the message is acked. A
  handler raising is classified (worker/errors.py) and becomes a hand-back, a stop or a message
  set aside (dead-lettered `invalid`), poison counting included (policy.after_error).

Every dead letter is built here, from the codec's headers (worker/codec.py), whatever died:
an invalid event, a failed delivery, a stray message, a poison message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, assert_never

import structlog

from worker import backoff, codec
from worker.abc import Ack, Handler, Nack, Publisher
from worker.codec import Delivery, Inbound
from worker.errors import Refused, classify, one_line
from worker.metrics import Metrics
from worker.policy import (
    Dead,
    DeadReason,
    Delivered,
    HandBack,
    Outcome,
    SetAside,
    Stop,
    Wait,
    after_error,
)

log = structlog.get_logger("queue_hooks.settle")


class Settler:
    def __init__(
        self,
        publisher: Publisher,
        metrics: Metrics,
        on_fatal: Callable[[BaseException], None] = lambda exc: None,
    ) -> None:
        self.publisher = publisher
        self.metrics = metrics
        self.on_fatal = on_fatal
        self._holding = 0  # publishes the broker refused, being made again

    # -- one delivery -------------------------------------------------------------------------
    async def delivery(self, delivery: Delivery, outcome: Outcome, now: float) -> None:
        """Returns once the outcome is safe with the broker (or needs nothing of it)."""
        if isinstance(outcome, Delivered):
            occurred = delivery.occurred_at
            self.metrics.delivered(None if occurred is None else now - occurred)
        elif isinstance(outcome, Wait):
            await self.waiting(outcome)
        elif isinstance(outcome, Dead):
            await self.dead_delivery(delivery, outcome.reason, outcome.error)
        else:
            assert_never(outcome)

    def waiting(self, wait: Wait) -> asyncio.Future[None]:
        """`delivery` of a Wait with no coroutine: the future of its confirm, which counts it
        when it comes. What a delivery put off returns to `message_now` (docs/receivers.md)."""
        confirmed = self.wait(wait)
        confirmed.add_done_callback(self._retried)
        return confirmed

    def wait(self, wait: Wait) -> asyncio.Future[None]:
        """Every wait publish goes through here; done once the broker holds it."""
        headers = codec.wait_headers(wait.next, wait.error)
        publish = partial(
            self.publisher.publish_wait, wait.next.body, headers, wait.tier_delay, wait.wait
        )
        return self._held_future(asyncio.ensure_future(publish()), publish)

    def _retried(self, confirmed: asyncio.Future[None]) -> None:
        if not confirmed.cancelled() and confirmed.exception() is None:
            self.metrics.retried()

    async def dead_delivery(self, delivery: Delivery, reason: DeadReason, error: str) -> None:
        headers = codec.dead_delivery(delivery, reason, error)
        await self._dead(delivery.body, headers, codec.JSON_TYPE)
        self.metrics.dead(reason)
        log.warning(
            "delivery dead-lettered", reason=reason, error=headers[codec.H_ERROR],
            event_id=delivery.event_id, hook_id=delivery.hook_id, attempts=delivery.attempts,
        )  # fmt: skip

    async def dead_event(self, inbound: Inbound, error: str, event_id: str | None) -> None:
        """An invalid event, kept byte for byte (contract §6)."""
        headers, error = codec.dead_event(error, event_id, inbound.routing_key)
        await self._dead(inbound.body, headers, inbound.content_type)
        self.metrics.event_consumed("invalid", "invalid")
        self.metrics.dead("invalid")
        log.warning(
            "event dead-lettered", reason="invalid", error=error, event_id=codec.shown_id(event_id)
        )

    async def set_aside(self, inbounds: Sequence[Inbound], error: str) -> None:
        """Each delivery dead-lettered `invalid` on its own (a batch too: one letter each)."""
        for inbound in inbounds:
            headers = codec.set_aside(inbound.headers, error)
            await self._dead(inbound.body, headers, inbound.content_type)
            self.metrics.dead("invalid")
        log.warning("message set aside as invalid", error=codec.cut(error, 300))

    async def _dead(self, body: bytes, headers: dict[str, Any], content_type: str | None) -> None:
        """Every dead letter's publish, held while the broker refuses it (`_held`)."""
        await self._held(partial(self.publisher.publish_dead, body, headers, content_type))

    # -- a publish the broker refused ----------------------------------------------------------
    def _held_future(
        self, first: asyncio.Future[None], publish: Callable[[], Awaitable[None]]
    ) -> asyncio.Future[None]:
        """`_held` for a publish under way, with no task unless the broker refuses it (then a
        task makes it again): done once the broker holds it, or with what else it raised."""
        held = first.get_loop().create_future()

        def again(refused: Refused) -> None:
            _chain(asyncio.ensure_future(self._held(publish, refused)), held)

        _chain(first, held, again)
        return held

    async def _held(
        self, publish: Callable[[], Awaitable[None]], refused: Refused | None = None
    ) -> None:
        """A publish the broker refused (worker/errors.py: Refused; the connection is up) is
        made again with the back-off while its message stays unacked, for as long as it takes.
        Handing the message back instead would have every other hook of its event called again
        at each refusal: a wait queue's leader killed in `make chaos` cost 516 calls of healthy
        hooks in 30 s of refusals (issue 14). A lost connection still raises at once: the
        broker has the message back already."""
        if refused is None:
            try:
                await publish()
                return
            except Refused as exc:
                refused = exc
        # A warning when refusals begin and a line when they end, not one per publish: a wait
        # batch refused is up to 200 deliveries.
        if not self._holding:
            log.warning("publishes refused by the broker, held and made again", error=str(refused))
        self._holding += 1
        try:
            for pause in backoff.delays():
                await asyncio.sleep(pause)
                try:
                    await publish()
                except Refused as exc:
                    log.debug("publish refused again", error=str(exc), retry_in_s=pause)
                else:
                    if self._holding == 1:
                        log.info("the broker takes the refused publishes again")
                    return
        finally:
            self._holding -= 1

    # -- one message ------------------------------------------------------------------------------
    async def message(
        self, handler: Handler, inbounds: Sequence[Inbound], ack: Ack, nack: Nack
    ) -> None:
        """Runs the handler on each delivery the message carries, then acks or nacks it."""
        work = self.message_now(handler, inbounds, ack, nack)
        if work is not None:
            await work

    def message_now(
        self, handler: Handler, inbounds: Sequence[Inbound], ack: Ack, nack: Nack
    ) -> Awaitable[None] | None:
        """As `message`, as far as it goes without awaiting: None when the handler finished
        synchronously and the message is acked; a future when its work is under way without
        a task (it settles the message when done); otherwise the coroutine that finishes it."""
        try:
            work = handler(inbounds[0]) if len(inbounds) == 1 else _all(handler, inbounds)
        except Exception as exc:
            return self._failed(exc, inbounds, ack, nack)
        if work is None:
            ack()
            return None
        if isinstance(work, asyncio.Future):
            return self._when_done(work, inbounds, ack, nack)
        return self._finish(work, inbounds, ack, nack)

    def _when_done(
        self, work: asyncio.Future[Any], inbounds: Sequence[Inbound], ack: Ack, nack: Nack
    ) -> asyncio.Future[None]:
        """As `_finish`, for work under way already (deliveries put off, waiting for their
        confirm): acked from the future's callback, no task unless it failed. Returns the
        future of the message settled."""
        settled: asyncio.Future[None] = work.get_loop().create_future()
        work.add_done_callback(partial(self._done, settled, inbounds, ack, nack))
        return settled

    def _done(
        self, settled: asyncio.Future[None], inbounds: Sequence[Inbound], ack: Ack, nack: Nack,
        work: asyncio.Future[Any],
    ) -> None:  # fmt: skip
        if not work.cancelled() and work.exception() is None:
            ack()  # even when a shutdown gave up on it: the broker holds its waits already
            if not settled.done():
                settled.set_result(None)
        elif not settled.done():  # failed (or cancelled): handled as `_finish` handles it
            _chain(asyncio.ensure_future(self._finish(work, inbounds, ack, nack)), settled)

    async def _finish(
        self, work: Awaitable[object], inbounds: Sequence[Inbound], ack: Ack, nack: Nack
    ) -> None:
        try:
            await work
        except asyncio.CancelledError:
            await nack()  # shutdown past its grace: hand it back
            raise
        except Exception as exc:
            await self._failed(exc, inbounds, ack, nack)
        else:
            ack()

    async def _failed(
        self, exc: Exception, inbounds: Sequence[Inbound], ack: Ack, nack: Nack
    ) -> None:
        outcome = after_error(classify(exc), one_line(exc), inbounds[0].deliveries)
        await self._after_error(outcome, exc, inbounds, ack, nack)

    async def _after_error(
        self, outcome: HandBack | Stop | SetAside, exc: Exception, inbounds: Sequence[Inbound],
        ack: Ack, nack: Nack,
    ) -> None:  # fmt: skip
        match outcome:
            case SetAside(error, loud):
                if loud:
                    log.error("the worker keeps failing on a message", error=error, exc_info=exc)
                await self.set_aside(inbounds, error)
                ack()
            case Stop():
                log.error("unexpected error, stopping", exc_info=exc)
                await nack()
                self.on_fatal(exc)
            case HandBack(pause):
                # The broker keeps the message; a pause avoids a hot redelivery loop.
                log.warning("message handed back", error=one_line(exc))
                await asyncio.sleep(pause)
                await nack()
            case _:
                assert_never(outcome)


def _chain(
    under: asyncio.Future[None],
    held: asyncio.Future[None],
    on_refused: Callable[[Refused], None] | None = None,
) -> None:
    """`held` ends as `under` does (refused, `on_refused` carries on instead, when given).
    Who gives up on `held` (a stop past its grace) gives up on `under`, as an await of it
    would: a wait batch skips a delivery's future cancelled. Every failure is retrieved, so
    none is logged "never retrieved" when its future is collected."""

    def ended(_under: asyncio.Future[None]) -> None:
        error = None if under.cancelled() else under.exception()
        if held.done():
            return
        if under.cancelled():
            held.cancel()
        elif isinstance(error, Refused) and on_refused is not None:
            on_refused(error)
        elif error is not None:
            held.set_exception(error)
        else:
            held.set_result(None)

    def given_up(_held: asyncio.Future[None]) -> None:
        if held.cancelled():
            under.cancel()

    under.add_done_callback(ended)
    held.add_done_callback(given_up)


async def _all(handler: Handler, inbounds: Sequence[Inbound]) -> None:
    """A batch's deliveries run side by side, and all run to their end: one failing must not
    cut another short mid-request. The message is settled as one: the first error counts."""
    results = await asyncio.gather(
        *(_awaited(handler, i) for i in inbounds), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _awaited(handler: Handler, inbound: Inbound) -> None:
    work = handler(inbound)
    if work is not None:
        await work
