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
from collections.abc import Awaitable, Callable, Coroutine, Sequence
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
            await self.wait(outcome)
            self.metrics.retried(delivery.tier)
        elif isinstance(outcome, Dead):
            await self.dead_delivery(delivery, outcome.reason, outcome.error)
        else:
            assert_never(outcome)

    async def wait(self, wait: Wait) -> None:
        headers = codec.wait_headers(wait.next, wait.error)
        publish = self.publisher.publish_wait
        await self._held(partial(publish, wait.next.body, headers, wait.tier_delay, wait.wait))

    async def dead_delivery(self, delivery: Delivery, reason: DeadReason, error: str) -> None:
        headers = codec.dead_delivery(delivery, reason, error)
        publish = self.publisher.publish_dead
        await self._held(partial(publish, delivery.body, headers, codec.JSON_TYPE))
        self.metrics.dead(reason)
        log.warning(
            "delivery dead-lettered", reason=reason, error=headers[codec.H_ERROR],
            event_id=delivery.event_id, hook_id=delivery.hook_id, attempts=delivery.attempts,
        )  # fmt: skip

    async def dead_event(self, inbound: Inbound, error: str, event_id: str | None) -> None:
        """An invalid event, kept byte for byte (contract §6)."""
        headers, error = codec.dead_event(error, event_id, inbound.routing_key)
        publish = self.publisher.publish_dead
        await self._held(partial(publish, inbound.body, headers, inbound.content_type))
        self.metrics.event_consumed("invalid", "invalid")
        self.metrics.dead("invalid")
        log.warning(
            "event dead-lettered", reason="invalid", error=error, event_id=codec.shown_id(event_id)
        )

    async def set_aside(self, inbounds: Sequence[Inbound], error: str) -> None:
        """Each delivery dead-lettered `invalid` on its own (a batch too: one letter each)."""
        for inbound in inbounds:
            headers = codec.set_aside(inbound.headers, error)
            publish = self.publisher.publish_dead
            await self._held(partial(publish, inbound.body, headers, inbound.content_type))
            self.metrics.dead("invalid")
        log.warning("message set aside as invalid", error=codec.cut(error, 300))

    # -- a publish the broker refused ----------------------------------------------------------
    async def _held(self, publish: Callable[[], Awaitable[None]]) -> None:
        """A publish the broker refused (worker/errors.py: Refused; the connection is up) is
        made again with the back-off while its message stays unacked, for as long as it takes.
        Handing the message back instead would have every other hook of its event called again
        at each refusal: a wait queue's leader killed in `make chaos` cost 516 calls of healthy
        hooks in 30 s of refusals (issue 14). A lost connection still raises at once: the
        broker has the message back already."""
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
    ) -> Coroutine[Any, Any, None] | None:
        """As `message`, as far as it goes without awaiting: None when the handler finished
        synchronously and the message is acked; otherwise the coroutine that finishes it."""
        try:
            work = handler(inbounds[0]) if len(inbounds) == 1 else _all(handler, inbounds)
        except Exception as exc:
            return self._failed(exc, inbounds, ack, nack)
        if work is None:
            ack()
            return None
        return self._finish(work, inbounds, ack, nack)

    async def _finish(
        self, work: Awaitable[None], inbounds: Sequence[Inbound], ack: Ack, nack: Nack
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
