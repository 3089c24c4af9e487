"""The one engine: event in -> validate -> look up hooks -> build payload -> deliver -> outcome.

An event is acked only when every hook's outcome is settled: delivered, scheduled for retry by
a confirmed publish, or dead-lettered by a confirmed publish. Each hook is settled on its own,
so one failing hook never makes another be called twice.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import orjson
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
from worker.broker import Broker, Inbound
from worker.broker import topology as t
from worker.deliver import Attempt, Sender
from worker.errors import is_transient, one_line
from worker.gate import Gate
from worker.metrics import Metrics
from worker.model import Hook
from worker.policy import Dead, DeadReason, Delivered, Retry, judge, quick_retryable, tier_wait
from worker.settings import Settings
from worker.store import HookCache
from worker.store.admin import disable_hook

log = structlog.get_logger("queue_hooks.pipeline")


@dataclass(frozen=True, slots=True)
class Job:
    """One delivery: an event's body for one hook, and how far its series has come."""

    hook_id: int
    event_id: str
    event: str
    queue_id: int
    body: bytes
    attempts: int = 0  # HTTP requests made so far
    tier: int = 0  # wait tiers gone through so far
    deferred: int = 0  # times put off because its schema was at its limit (no request made)
    occurred_at: float | None = None  # for the lag metric; read back from the body on retries

    @property
    def webhook_id(self) -> str:
        return f"{self.event_id}:{self.hook_id}"

    def attempted(self, attempts: int) -> Job:
        """With its request count moved on. Built directly: dataclasses.replace looks the
        fields up again each time, about 1 us on every delivery."""
        return Job(
            self.hook_id, self.event_id, self.event, self.queue_id, self.body, attempts,
            self.tier, self.deferred, self.occurred_at,
        )  # fmt: skip

    def headers(self) -> dict[str, object]:
        return {
            t.H_HOOK_ID: self.hook_id,
            t.H_EVENT_ID: self.event_id,
            t.H_EVENT: self.event,
            t.H_QUEUE_ID: self.queue_id,
            t.H_ATTEMPTS: self.attempts,
            t.H_TIER: self.tier,
        } | ({t.H_DEFERRED: self.deferred} if self.deferred else {})

    @classmethod
    def from_message(cls, inbound: Inbound) -> Job:
        h = inbound.headers
        return cls(
            hook_id=int(h[t.H_HOOK_ID]),
            event_id=str(h.get(t.H_EVENT_ID, "")),
            event=str(h.get(t.H_EVENT, "")),
            queue_id=int(h.get(t.H_QUEUE_ID, 0)),
            body=inbound.body,
            attempts=int(h.get(t.H_ATTEMPTS, 0)),
            tier=int(h.get(t.H_TIER, 0)),
            occurred_at=_occurred_at(inbound.body),
            deferred=int(h.get(t.H_DEFERRED, 0)),
        )


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        cache: HookCache,
        sender: Sender,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.cache = cache
        self.sender = sender
        self.metrics = metrics
        self._gates: dict[int, Gate] = {}  # schema id -> its requests in flight and waiting
        # Without wait tiers nothing can be deferred: deliveries then wait for a slot.
        self._stall = settings.schema_stall if settings.retry_delays else float("inf")

    # -- events ---------------------------------------------------------------------------
    async def on_event(self, inbound: Inbound) -> None:
        received_at = _aware(inbound.timestamp) or datetime.now(UTC)
        try:
            event = parse_event(inbound.body, self.settings.max_event_bytes)
        except InvalidEvent as exc:
            await self._dead_invalid(inbound, exc)
            return
        await self.cache.wait_fresh()
        hooks = self.cache.hooks_for(event.queue_id, event.event)
        self.metrics.event_consumed(event.event, "delivering" if hooks else "no_hooks")
        if not hooks:
            return
        data = encode_data(event, self.cache.queue_variables(event.queue_id))
        jobs = [self._job(event, received_at, hook, data) for hook in hooks]
        if len(hooks) == 1:  # the common case: no gather, no extra task
            await self._run(jobs[0], hooks[0])
            return
        await asyncio.gather(*(self._run(job, hook) for job, hook in zip(jobs, hooks, strict=True)))

    @staticmethod
    def _job(event: Event, received_at: datetime, hook: Hook, data: bytes) -> Job:
        body = build_body(event, received_at, hook.id, hook.schema.id, data)
        occurred = (event.occurred_at or received_at).timestamp()
        return Job(hook.id, event.id, event.event, event.queue_id, body, occurred_at=occurred)

    async def _dead_invalid(self, inbound: Inbound, exc: InvalidEvent) -> None:
        headers: dict[str, object] = {t.H_REASON: "invalid", t.H_ERROR: exc.error, t.H_ATTEMPTS: 0}
        if exc.event_id is not None:
            headers[t.H_EVENT_ID] = exc.event_id
        if inbound.routing_key:
            headers[t.H_ROUTING_KEY] = inbound.routing_key
        await self.broker.publish_dead(inbound.body, headers, inbound.content_type)
        self.metrics.event_consumed("invalid", "invalid")
        self.metrics.dead("invalid")
        log.warning("event dead-lettered", reason="invalid", error=exc.error, event_id=exc.event_id)

    # -- retries --------------------------------------------------------------------------
    async def on_retry(self, inbound: Inbound) -> None:
        try:
            job = Job.from_message(inbound)
        except (KeyError, ValueError, TypeError) as exc:
            # Not one of ours (published by hand?): keep it, with what was wrong.
            error = f"retry message without a valid {t.H_HOOK_ID} header ({one_line(exc)})"
            await self.broker.publish_dead(
                inbound.body,
                {t.H_ATTEMPTS: 0, **inbound.headers, t.H_REASON: "invalid", t.H_ERROR: error},
                inbound.content_type,
            )  # fmt: skip
            self.metrics.dead("invalid")
            log.warning("retry message dead-lettered", reason="invalid", error=error)
            return
        await self.cache.wait_fresh()
        hook = self.cache.hook(job.hook_id)
        if hook is None:
            await self._dead(job, "disabled", f"hook {job.hook_id} is disabled or deleted")
            return
        await self._run(job, hook)

    # -- one hook's delivery, start to settled ----------------------------------------------
    async def _run(self, job: Job, hook: Hook) -> None:
        schema_id = hook.schema.id
        gate = self._gates.get(schema_id)
        if gate is None:
            gate = self._gates[schema_id] = Gate(self.settings.schema_concurrency, self._stall)
        if not await gate.enter():
            await self._defer(job, hook, gate.first_report())
            return
        try:
            attempt, job = await self._attempts(job, hook)
        finally:
            gate.release()
            if not gate.busy and not gate.waiters:
                self._gates.pop(schema_id, None)
        now = time.time()
        verdict = judge(attempt, hook.schema.url, now)
        self._log_outcome(job, hook, attempt, verdict)
        if isinstance(verdict, Delivered):
            lag = now - job.occurred_at if job.occurred_at is not None else None
            self.metrics.delivered(attempt, lag)
            return
        if isinstance(verdict, Dead):
            await self._dead(job, verdict.reason, verdict.error)
            if verdict.reason == "gone":
                await self._disable(hook.id)
            return
        await self._schedule(job, verdict)

    async def _attempts(self, job: Job, hook: Hook) -> tuple[Attempt, Job]:
        """One request, plus quick in-process retries of a refused connection or 502/503/504."""
        made = job.attempts

        async def once() -> Attempt:
            nonlocal made
            made += 1
            self.metrics.in_flight_now += 1
            try:
                result = await self.sender.post(hook.schema, job.body, job.webhook_id, made)
            finally:
                self.metrics.in_flight_now -= 1
            if result.blocked:
                made -= 1  # refused before connecting: no HTTP request was made
            self.metrics.attempt(result)
            return result

        first = await once()
        if not quick_retryable(first) or not self.settings.quick_retries:
            return first, job.attempted(made)
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
        return result, job.attempted(made)

    async def _disable(self, hook_id: int) -> None:
        """After a 410. Best effort: if the database is away, the next 410 disables it."""
        try:
            await disable_hook(self.settings.database_url, hook_id)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("could not disable hook after 410", hook_id=hook_id, error=one_line(exc))

    async def _schedule(self, job: Job, verdict: Retry) -> None:
        wait = tier_wait(self.settings.retry_delays, job.tier, verdict.retry_after)
        if wait is None:
            await self._dead(job, "exhausted", verdict.error)
            return
        delay = self.settings.retry_delays[job.tier]
        nxt = replace(job, tier=job.tier + 1)
        headers = nxt.headers()
        headers[t.H_ERROR] = verdict.error
        await self.broker.publish_wait(job.body, headers, delay, wait)
        self.metrics.retried(job.tier)

    async def _defer(self, job: Job, hook: Hook, first: bool) -> None:
        """The schema has its fill of requests in flight and they are not finishing: rather
        than hold this delivery in memory (and its event unacked), hand it to the broker
        through a wait tier. No request was made, so neither the attempt count nor the tier
        moves: the delivery keeps its whole series of attempts for when it is sent. Repeated
        deferrals climb the tiers' delays on their own count, so a schema that stays down
        costs less and less."""
        delays = self.settings.retry_delays
        delay = delays[min(job.deferred, len(delays) - 1)]
        nxt = replace(job, deferred=job.deferred + 1)
        headers = nxt.headers()
        headers[t.H_ERROR] = (
            f"deferred: schema {hook.schema.id} had {self.settings.schema_concurrency}"
            " requests in flight, none finished lately"
        )
        await self.broker.publish_wait(job.body, headers, delay, delay)
        self.metrics.deferred()
        # One warning per stall, not one line per delivery: a dead receiver's share of the
        # traffic would flood the log (the metric counts every deferral).
        (log.warning if first else log.debug)(
            "schema stalled, deliveries deferred" if first else "delivery deferred",
            event_id=job.event_id, hook_id=hook.id, schema_id=hook.schema.id,
            in_flight=self.settings.schema_concurrency, deferred=nxt.deferred, wait_s=delay,
        )  # fmt: skip

    async def _dead(self, job: Job, reason: DeadReason, error: str) -> None:
        headers = job.headers()
        headers[t.H_REASON] = reason
        headers[t.H_ERROR] = error
        await self.broker.publish_dead(job.body, headers, "application/json")
        self.metrics.dead(reason)
        log.warning(
            "delivery dead-lettered", reason=reason, error=error, event_id=job.event_id,
            hook_id=job.hook_id, attempts=job.attempts,
        )  # fmt: skip

    def _log_outcome(self, job: Job, hook: Hook, attempt: Attempt, verdict: object) -> None:
        outcome = _OUTCOMES[type(verdict)]
        if isinstance(verdict, Retry) and job.tier >= len(self.settings.retry_delays):
            outcome = "dead"  # no tier left: _schedule dead-letters it as exhausted
        log.info(
            "delivery",
            outcome=outcome,
            event_id=job.event_id,
            event_type=job.event,
            queue_id=job.queue_id,
            hook_id=hook.id,
            schema_id=hook.schema.id,
            attempt=job.attempts,
            status=attempt.status,
            duration_ms=round(attempt.duration * 1000, 1),
            error=attempt.error,
        )


def _aware(moment: datetime | None) -> datetime | None:
    """AMQP timestamps are whole UTC seconds; the client may hand them over naive."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _occurred_at(body: bytes) -> float | None:
    """The event's time from the body we built (its `timestamp`), for the lag metric."""
    try:
        return datetime.fromisoformat(orjson.loads(body)["timestamp"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return None


_OUTCOMES: dict[type, str] = {Delivered: "delivered", Retry: "retry", Dead: "dead"}


def _last_result(state: RetryCallState) -> Attempt:
    """When the quick retries run out, the last attempt is the one judged."""
    assert state.outcome is not None
    result: Attempt = state.outcome.result()
    return result
