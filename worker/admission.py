"""Whether, when and how many of a schema's deliveries are attempted: its circuit, its rate
bucket and its concurrency gate, kept per schema in this process (docs/receivers.md).

The decisions are pure (worker/circuit.py, worker/ratelimit.py, worker/concurrency.py); this
module keeps one of each per schema, reads the clock, waits where a decision says wait, and
tells the pipeline one of two things: attempt now, holding a `Slot` it hands back with
`leave`; or put the delivery off through the wait queues (`PutOff`), without an attempt.

In that order: an open circuit puts off before anything is reserved; a rate limit's slot is
reserved before the gate, so that deliveries keep their order while they wait for it; the
gate's limit is the schema's adaptive limit within its fair share of the prefetch window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import structlog

from worker import concurrency, ratelimit
from worker.circuit import Circuit, Circuits, State
from worker.circuit import sign_of as health_sign
from worker.concurrency import Limiter, Limiters, fair_share
from worker.gate import Gate
from worker.metrics import Metrics
from worker.model import Attempt, Schema
from worker.settings import Settings

log = structlog.get_logger("queue_hooks.admission")


@dataclass(frozen=True, slots=True)
class PutOff:
    """Not attempted: deferred through the wait queues for at least `at_least` seconds."""

    error: str  # the deferral's error line (the wait message's header)
    at_least: float = 0.0
    loud: bool = False  # the first of a stall: logged as a warning, the rest at debug


@dataclass(slots=True)
class Slot:
    """A delivery let through: its schema's gate slot is held until `leave`."""

    schema_id: int
    gate: Gate
    circuit: Circuit
    limiter: Limiter


class Admission:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.metrics = metrics
        self.circuits = Circuits(settings.circuit_failures, settings.circuit_open)
        ceiling = settings.schema_concurrency
        floor = min(settings.schema_concurrency_floor, ceiling)
        self.limiters = Limiters(floor, ceiling, settings.schema_concurrency_initial)
        self.buckets = ratelimit.Buckets(settings.rate_share_workers, settings.rate_wait_max)
        self.gates: dict[int, Gate] = {}  # schemas with requests in flight or waiting
        self._window = settings.prefetch
        self._floor = floor
        # Without wait tiers nothing can be deferred: deliveries then wait for a slot.
        self._stall = settings.schema_stall if settings.retry_delays else float("inf")
        self._deferrable = bool(settings.retry_delays)

    def put_off_now(self, schema: Schema) -> PutOff | None:
        """The put-off `enter` would decide, when it is known now with nothing reserved: an
        open circuit, a rate limit far behind, a stalled gate. None: ask `enter` (attempt,
        wait a turn, or put off after all). So a delivery put off needs no task or coroutine
        (docs/receivers.md, "A dead receiver's events"). A circuit due for a probe, a
        rate-limited schema not deferred (`enter` reserves its slot first) and a gate with a
        slot free are `enter`'s to decide."""
        if not self._deferrable:
            return None
        now = time.monotonic()
        circuit = self.circuits.of(schema.id)
        if circuit.refuses(now):
            return _circuit_open(schema, circuit, now)
        if circuit.state is not State.CLOSED:  # due for a probe: `enter` takes it
            return None
        if schema.max_per_second is not None:
            room = self._room(schema.id)
            defer = self.buckets.defers(schema.id, schema.max_per_second, now, room)
            return None if defer is None else _rate_defer(schema, defer)
        gate = self.gates.get(schema.id)
        if gate is None:  # nothing in flight: a slot is free
            return None
        gate.resize(self._share(self.limiters.of(schema.id)))
        return self._stalled(schema.id, gate) if gate.refuses() else None

    async def enter(self, schema: Schema) -> Slot | PutOff:
        now = time.monotonic()
        circuit = self.circuits.of(schema.id)
        if self._deferrable and not circuit.allow(now):
            return _circuit_open(schema, circuit, now)
        decision = self.buckets.ask(schema.id, schema.max_per_second, now, self._room(schema.id))
        if isinstance(decision, ratelimit.Defer) and self._deferrable:
            circuit.abandon()
            return _rate_defer(schema, decision)
        while isinstance(decision, ratelimit.Defer):  # nowhere to defer to: wait for a slot
            await asyncio.sleep(decision.seconds)
            decision = self.buckets.ask(schema.id, schema.max_per_second, time.monotonic())
        if isinstance(decision, ratelimit.Wait):
            await self._wait_turn(schema.id, circuit, decision.seconds)
        return await self._through_gate(schema.id, circuit)

    async def _wait_turn(self, schema_id: int, circuit: Circuit, seconds: float) -> None:
        """The slot is reserved: wait for it. Slots go out in the order deliveries ask, so
        the waits end in that order too."""
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            bucket = self.buckets.by_schema.get(schema_id)
            if bucket is not None:
                bucket.give_back(time.monotonic())
            circuit.abandon()
            raise

    async def _through_gate(self, schema_id: int, circuit: Circuit) -> Slot | PutOff:
        gate = self.gates.get(schema_id)
        if gate is None:
            gate = self.gates[schema_id] = Gate(self._floor, self._stall)
        limiter = self.limiters.of(schema_id)
        gate.resize(self._share(limiter))
        try:
            entered = await gate.enter()
        except asyncio.CancelledError:
            circuit.abandon()
            self._idle(schema_id, gate)
            raise
        if not entered:
            circuit.abandon()
            return self._stalled(schema_id, gate)
        return Slot(schema_id, gate, circuit, limiter)

    def _stalled(self, schema_id: int, gate: Gate) -> PutOff:
        self._idle(schema_id, gate)
        return PutOff(
            f"deferred: schema {schema_id} had {gate.limit} requests in flight,"
            " none finished lately",
            loud=gate.first_report(),
        )

    def _room(self, schema_id: int) -> int:
        """The schema's fair share of the prefetch window, counting it among the busy."""
        active = len(self.gates) + (schema_id not in self.gates)
        return fair_share(self._window, self._window, active, self._floor)

    def _share(self, limiter: Limiter) -> int:
        return fair_share(limiter.current, self._window, len(self.gates), self._floor)

    def sample(self, slot: Slot, attempt: Attempt) -> None:
        """One HTTP attempt's answer (or its absence), for the adaptive limit."""
        sign: concurrency.Sign = "none" if attempt.blocked else concurrency.sign_of(attempt.status)
        before = slot.limiter.current
        slot.limiter.sample(time.monotonic(), attempt.duration, sign, slot.gate.busy)
        if slot.limiter.current != before:
            slot.gate.resize(self._share(slot.limiter))

    def leave(self, slot: Slot, attempt: Attempt | None) -> None:
        """After the attempts (None: they never finished, cancelled at shutdown)."""
        slot.gate.release()
        self._idle(slot.schema_id, slot.gate)
        circuit = slot.circuit
        if attempt is None:
            circuit.abandon()
            return
        before = circuit.state
        circuit.record(health_sign(attempt.status, attempt.blocked), time.monotonic())
        if circuit.state is before:
            return
        self.metrics.circuit(slot.schema_id, circuit.state)
        if circuit.state is State.OPEN and before is State.CLOSED:
            log.warning(
                "circuit opened: deliveries put off, one probe at a time",
                schema_id=slot.schema_id, failures=self.circuits.threshold,
                probe_every_s=self.circuits.open_for, status=attempt.status, error=attempt.error,
            )  # fmt: skip
        elif circuit.state is State.CLOSED:
            log.info("circuit closed: the receiver answers again", schema_id=slot.schema_id)
            slot.limiter.restart()

    def _idle(self, schema_id: int, gate: Gate) -> None:
        if not gate.busy and not gate.waiters and self.gates.get(schema_id) is gate:
            del self.gates[schema_id]

    def forget(self, live: set[int]) -> None:
        """After a reload: the state of schemas no longer in the database goes."""
        for schema_id in set(self.circuits.by_schema) - live:
            self.metrics.circuit_forgotten(schema_id)
        self.circuits.forget(live)
        for table in (self.limiters.by_schema, self.buckets.by_schema):
            for schema_id in [k for k in table if k not in live]:
                with contextlib.suppress(KeyError):
                    del table[schema_id]

    def open_circuits(self) -> list[str]:
        """For /readyz and `queue-hooks check`: one line per circuit not closed."""
        now = time.monotonic()
        lines = []
        for schema_id, state in sorted(self.circuits.not_closed().items()):
            circuit = self.circuits.of(schema_id)
            shown = "open" if state is State.OPEN else "half-open (a probe is out)"
            lines.append(
                f"circuit {shown}: schema {schema_id}, deliveries put off,"
                f" next probe in {circuit.retry_in(now):.1f} s"
            )
        return lines


def _circuit_open(schema: Schema, circuit: Circuit, now: float) -> PutOff:
    return PutOff(
        f"circuit open: schema {schema.id}'s receiver kept failing; not attempted",
        circuit.retry_in(now),
    )


def _rate_defer(schema: Schema, defer: ratelimit.Defer) -> PutOff:
    return PutOff(
        f"rate limit: schema {schema.id} takes {schema.max_per_second:g} a second; not attempted",
        defer.seconds,
    )
