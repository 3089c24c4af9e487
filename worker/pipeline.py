"""The one engine: event in -> validate -> look up hooks -> build payload -> deliver -> outcome.

Each step decides and returns; worker/settle.py carries the outcome out (publishes, acks). An
event is acked only when every hook's outcome is settled: delivered, scheduled for retry by a
confirmed publish, or dead-lettered by a confirmed publish. Each hook is settled on its own,
so one failing hook never makes another be called twice.

It depends on interfaces only (worker/abc.py): the settling's publisher, the hook source, the
deliverer; tests/unit/test_engine_unit.py runs every outcome path with fakes of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from schemas.events import Event, InvalidEvent, parse_event
from schemas.payload import build_body, encode_data
from worker.abc import Deliverer, HookSource
from worker.admission import Admission, PutOff, Slot
from worker.codec import H_HOOK_ID, Delivery, Inbound
from worker.errors import Permanent, one_line
from worker.metrics import Metrics
from worker.model import Attempt, Hook
from worker.policy import (
    Dead,
    Delivered,
    Outcome,
    Wait,
    after_verdict,
    deferral,
    judge,
    not_its_hook,
    not_sendable,
    quick_retryable,
)
from worker.settings import Settings
from worker.settle import Settler

log = structlog.get_logger("queue_hooks.pipeline")


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        settle: Settler,
        hooks: HookSource,
        deliverer: Deliverer,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.settle = settle
        self.hooks = hooks
        self.deliverer = deliverer
        self.metrics = metrics
        self.admission = Admission(settings, metrics)  # circuits, rate limits, concurrency

    # -- events ---------------------------------------------------------------------------
    def on_event(self, inbound: Inbound) -> Awaitable[object] | None:
        """None when the event is done with here and now: valid, the hooks fresh, and no hook
        wants it (counted; the settling acks it), so no task or coroutine is made for it: most
        events are that (docs/receivers.md). A future when every delivery of it is put off
        (no task either: the settling acks it once their waits are confirmed). Otherwise the
        coroutine that handles it: an invalid event's dead letter, a wait for the hooks, its
        deliveries."""
        received_at = _aware(inbound.timestamp) or datetime.now(UTC)
        try:
            event = parse_event(inbound.body, self.settings.max_event_bytes)
        except InvalidEvent as exc:
            return self.settle.dead_event(inbound, exc.error, exc.event_id)
        if not self.hooks.ready:
            return self._when_fresh(event, received_at)
        return self._deliveries(event, received_at)

    async def _when_fresh(self, event: Event, received_at: datetime) -> None:
        await self.hooks.wait_fresh()
        work = self._deliveries(event, received_at)
        if work is not None:
            await work

    def _deliveries(self, event: Event, received_at: datetime) -> Awaitable[object] | None:
        """The one place that decides whether any hook wants an event (and counts it)."""
        hooks = self.hooks.hooks_for(event.queue_id, event.event)
        if not hooks:
            self.metrics.event_consumed(event.event, "no_hooks")
            return None
        offs = [self._put_off_now(hook) for hook in hooks]
        put_off = [off for off in offs if off is not None]
        if len(put_off) < len(offs):
            return self._deliver(event, received_at, hooks, offs)
        # Every delivery put off (a dead receiver's share): no task and no coroutine, only
        # the futures of their wait publishes (docs/receivers.md, "A dead receiver's events").
        self.metrics.event_consumed(event.event, "delivering")
        built = self._built(event, received_at, hooks)
        waits = [
            self.settle.waiting(self._put_off(delivery, hook, off))
            for delivery, hook, off in zip(built, hooks, put_off, strict=True)
        ]
        return waits[0] if len(waits) == 1 else asyncio.gather(*waits)

    def _put_off_now(self, hook: Hook) -> PutOff | None:
        """Known now to be put off (Admission.put_off_now); None: `_outcome` decides."""
        if _unsendable(hook):  # the retry path, as `_outcome` takes it
            return None
        return self.admission.put_off_now(hook.schema)

    async def _deliver(
        self, event: Event, received_at: datetime, hooks: Sequence[Hook],
        offs: Sequence[PutOff | None],
    ) -> None:  # fmt: skip
        # Counted here, in the step that enters each delivery's admission (a rate limit's
        # deferral is counted as it is decided): an event counted as delivering has had its
        # deliveries admitted or put off, as before these ran in a task of their own.
        self.metrics.event_consumed(event.event, "delivering")
        deliveries = self._built(event, received_at, hooks)
        if len(hooks) == 1:  # the common case: no gather, no extra task
            await self._run(deliveries[0], hooks[0], offs[0])
            return
        await asyncio.gather(
            *(self._run(*each) for each in zip(deliveries, hooks, offs, strict=True))
        )

    def _built(self, event: Event, received_at: datetime, hooks: Sequence[Hook]) -> list[Delivery]:
        data = encode_data(event, self.hooks.queue_variables(event.queue_id))
        return [_delivery(event, received_at, hook, data) for hook in hooks]

    # -- retries --------------------------------------------------------------------------
    async def on_retry(self, inbound: Inbound) -> None:
        try:
            delivery = Delivery.read(inbound)
        except (KeyError, ValueError, TypeError) as exc:
            # Not one of ours (published by hand?): set aside, kept with what was wrong.
            raise Permanent(
                f"retry message without a valid {H_HOOK_ID} header ({one_line(exc)})"
            ) from None
        await self.hooks.wait_fresh()
        hook = self.hooks.hook(delivery.hook_id)
        now = None if hook is None else (hook.queue_id, hook.event)
        error = not_its_hook(delivery.hook_id, (delivery.queue_id, delivery.event), now)
        if hook is None or error is not None:  # not sent (contract §5)
            await self.settle.delivery(delivery, Dead("disabled", error or ""), time.time())
            return
        await self._run(delivery, hook)

    # -- one hook's delivery, start to settled ----------------------------------------------
    async def _run(self, delivery: Delivery, hook: Hook, off: PutOff | None = None) -> None:
        outcome, delivery = await self._outcome(delivery, hook, off)
        await self.settle.delivery(delivery, outcome, time.time())
        if isinstance(outcome, Dead) and outcome.reason == "gone":
            await self.hooks.disable(hook.id)

    async def _outcome(
        self, delivery: Delivery, hook: Hook, off: PutOff | None = None
    ) -> tuple[Outcome, Delivery]:
        """`off`: put off already (`_put_off_now`); otherwise admission decides now."""
        delays = self.settings.retry_delays
        if error := _unsendable(hook):
            return not_sendable(delivery, delays, error), delivery
        slot = off if off is not None else await self.admission.enter(hook.schema)
        if isinstance(slot, PutOff):
            return self._put_off(delivery, hook, slot), delivery
        attempt: Attempt | None = None
        try:
            attempt, delivery = await self._attempts(delivery, hook, slot)
        finally:
            self.admission.leave(slot, attempt)
        verdict = judge(attempt, hook.target.shown, time.time())
        outcome = after_verdict(delivery, verdict, delays)
        self._log_outcome(delivery, hook, attempt, outcome)
        return outcome, delivery

    async def _attempts(
        self, delivery: Delivery, hook: Hook, slot: Slot
    ) -> tuple[Attempt, Delivery]:
        """One request, plus quick in-process retries of a refused connection or 502/503/504."""
        made = delivery.attempts

        async def once() -> Attempt:
            nonlocal made
            made += 1
            self.metrics.in_flight_now += 1
            try:
                result = await self.deliverer.post(
                    hook.target, delivery.body, delivery.webhook_id, made
                )
            finally:
                self.metrics.in_flight_now -= 1
            if result.blocked:
                made -= 1  # refused before connecting: no HTTP request was made
            self.metrics.attempt(result)
            self.admission.sample(slot, result)
            return result

        first = await once()
        if not quick_retryable(first) or not self.settings.quick_retries:
            return first, delivery.moved(attempts=made)
        # Only now pay for tenacity (measured: a few percent of the hot path). It is handed the
        # first result as its attempt 1, so waits and limits are exactly as if it made it.
        primed = [first]

        async def next_result() -> Attempt:
            return primed.pop() if primed else await once()

        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + self.settings.quick_retries),
            wait=wait_random_exponential(multiplier=0.1, max=0.4),
            retry=retry_if_result(quick_retryable),
            retry_error_callback=_last_result,
        )
        result: Attempt = await retrying(next_result)
        return result, delivery.moved(attempts=made)

    def _put_off(self, delivery: Delivery, hook: Hook, off: PutOff) -> Wait:
        """Not attempted (an open circuit, a rate limit far below the arrivals, a schema whose
        requests stopped finishing): rather than hold it in memory (and its event unacked),
        hand it to the broker through a wait tier (policy.deferral), no attempt counted."""
        wait = deferral(delivery, self.settings.retry_delays, off.error, off.at_least)
        self.metrics.deferred()
        # One warning per stall or circuit opening, not a line per delivery: a dead receiver's
        # share of the traffic would flood the log (the metric counts every deferral).
        (log.warning if off.loud else log.debug)(
            "schema stalled, deliveries deferred" if off.loud else "delivery deferred",
            event_id=delivery.event_id, hook_id=hook.id, schema_id=hook.schema.id,
            error=off.error, deferred=wait.next.deferred, wait_s=wait.wait,
        )  # fmt: skip
        return wait

    def _log_outcome(
        self, delivery: Delivery, hook: Hook, attempt: Attempt, outcome: Outcome
    ) -> None:
        log.info(
            "delivery",
            outcome=_OUTCOMES[type(outcome)],
            event_id=delivery.event_id,
            event_type=delivery.event,
            queue_id=delivery.queue_id,
            hook_id=hook.id,
            schema_id=hook.schema.id,
            attempt=delivery.attempts,
            status=attempt.status,
            duration_ms=round(attempt.duration * 1000, 1),
            error=attempt.error,
        )


def _delivery(event: Event, received_at: datetime, hook: Hook, data: bytes) -> Delivery:
    body = build_body(event, received_at, hook.id, hook.schema.id, data)
    occurred = (event.occurred_at or received_at).timestamp()
    return Delivery(hook.id, event.id, event.event, event.queue_id, body, occurred_at=occurred)


def _unsendable(hook: Hook) -> str | None:
    """Why nothing can be sent to the hook's schema as it stands (policy.not_sendable)."""
    return hook.schema.secret_error or hook.target.url_error


def _aware(moment: datetime | None) -> datetime | None:
    """AMQP timestamps are whole UTC seconds; the client may hand them over naive."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


_OUTCOMES: dict[type, str] = {Delivered: "delivered", Wait: "retry", Dead: "dead"}


def _last_result(state: RetryCallState) -> Attempt:
    """When the quick retries run out, the last attempt is the one judged."""
    assert state.outcome is not None
    result: Attempt = state.outcome.result()
    return result
