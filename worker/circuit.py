"""A circuit per schema: stop calling a receiver that is down, and probe it now and then.

Closed: every delivery is attempted. After `threshold` consecutive failures that say the
receiver itself is unwell (no response at all: connection error or timeout; or a 5xx) the
circuit opens. Open: deliveries are not attempted (the caller defers them through the wait
queues, no attempt counted) until `open_for` seconds have passed since it opened; then one
delivery at a time is let through as a probe (half-open). The probe's success closes the
circuit; its failure opens it again for another `open_for`.

Why: a dead endpoint otherwise holds up to `SCHEMA_CONCURRENCY` connections hanging until
their timeout, over and over, and every one of them costs the worker a request, a timer and
a retry. With the circuit open it sees one probe per interval, and its events cost little
more than being consumed.

Answers that show the receiver alive (2xx, 4xx, 429) reset the count: a receiver that
refuses a payload or asks us to slow down is not down (429 is the adaptive limit's business,
worker/concurrency.py). A target refused by our own guard says nothing about the receiver.

Pure: no clock is read here, the caller passes a monotonic `now`. Each worker process keeps
its own circuits (docs/receivers.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

Sign = Literal["ok", "fail", "none"]  # what one attempt says about the receiver's health


class State(IntEnum):
    """The values of the metric `queue_hooks_circuit_state`."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


def sign_of(status: int | None, blocked: bool = False) -> Sign:
    """What an attempt's result says about the receiver (contract §5's outcomes)."""
    if blocked:
        return "none"  # our guard refused the address: no request was made
    if status is None or status >= 500:
        return "fail"  # connection error, timeout, or the receiver's own failure
    return "ok"


@dataclass(slots=True)
class Circuit:
    threshold: int = 5
    open_for: float = 5.0
    state: State = State.CLOSED
    failures: int = 0  # consecutive, while closed
    opened_at: float = 0.0
    probing: bool = False  # a probe is out (half-open)

    def allow(self, now: float) -> bool:
        """May a delivery be attempted now? False: defer it without an attempt.

        True while half-open means: this one is the probe. Its result must come back through
        `record` (or `abandon` if it never ran), or no further probe is let through.
        """
        if self.state is State.CLOSED:
            return True
        if self.refuses(now):
            return False
        self.state, self.probing = State.HALF_OPEN, True
        return True

    def refuses(self, now: float) -> bool:
        """Would `allow` say no? Asked without taking the probe."""
        return self.state is not State.CLOSED and (
            self.probing or now - self.opened_at < self.open_for
        )

    def record(self, sign: Sign, now: float) -> None:
        """The result of an attempt that `allow` let through."""
        if sign == "none":
            self.abandon()
            return
        if sign == "ok":
            self.state, self.failures, self.probing = State.CLOSED, 0, False
            return
        if self.state is State.CLOSED:
            self.failures += 1
            if self.failures < self.threshold:
                return
        # A failed probe, or one failure too many: open (again) from now on.
        self.state, self.opened_at, self.probing, self.failures = State.OPEN, now, False, 0

    def abandon(self) -> None:
        """The probe let through never told us anything (cancelled at shutdown, blocked):
        the next caller may probe at once."""
        if self.state is State.HALF_OPEN and self.probing:
            self.state, self.probing = State.OPEN, False
            self.opened_at = float("-inf")

    def retry_in(self, now: float) -> float:
        """Seconds until a probe may go: how long a deferral need not come back sooner."""
        if self.state is State.CLOSED:
            return 0.0
        return max(0.0, self.opened_at + self.open_for - now)


@dataclass(slots=True)
class Circuits:
    """One circuit per schema id, made on first use. Schema ids are bounded by the database,
    so this map (and the metric labelled by schema id) is bounded too."""

    threshold: int = 5
    open_for: float = 5.0
    by_schema: dict[int, Circuit] = field(default_factory=dict)

    def of(self, schema_id: int) -> Circuit:
        circuit = self.by_schema.get(schema_id)
        if circuit is None:
            circuit = self.by_schema[schema_id] = Circuit(self.threshold, self.open_for)
        return circuit

    def not_closed(self) -> dict[int, State]:
        """For `queue-hooks check` and the metric: the circuits that are open or probing."""
        return {sid: c.state for sid, c in self.by_schema.items() if c.state is not State.CLOSED}

    def forget(self, live: set[int]) -> None:
        """Drop the circuits of schemas no longer in the hook cache (deleted schemas)."""
        for sid in [sid for sid in self.by_schema if sid not in live]:
            del self.by_schema[sid]
