"""How many requests a schema may have in flight: a limit that follows what the receiver shows.

A fixed limit is wrong for every receiver but one: too low for a slow receiver that could take
more (256 in flight at 200 ms is 1,280/s, whatever the receiver could do), too high for one
that degrades under load (it slows down, then answers 503, and a fixed 256 keeps pushing). So
each schema's limit moves, in the manner of TCP Vegas and AIMD as Netflix's concurrency-limits
library does it:

- The baseline is the lowest round-trip time seen lately (a minimum over the last one or two
  `window`s, so a receiver that got slower for good is re-learnt, not throttled for ever).
- Once per round (about one round-trip, at least `MIN_ROUND`), the average round-trip time of
  the round's answers is compared with the baseline. `queue = limit * excess / avg`, with
  `excess = avg - baseline - slack`, estimates how many of our requests wait inside the
  receiver rather than being served. With `step = log10(limit)`: at most `step` (no queue to
  speak of) the limit doubles in the first slow start and grows by `6 * step` after it, below
  `alpha = 3 * step` it grows by `step`, above `beta = 6 * step` it shrinks by half the
  excess, between the two it holds (Netflix's VegasLimit). The quick growth is what gets a
  slow receiver from 64 to 500 in flight in a few seconds of 200-ms rounds, where `step`
  alone took half a minute.
- `slack` is what a round-trip may exceed the baseline by without reading as a queue: 2 ms
  of loopback jitter, or `tolerance` (10 %) of the baseline when that is more. A 200-ms
  receiver's answers reach us 10 or 20 ms late when the worker's own event loop is busy, and
  `limit * excess / avg` turns those milliseconds into a queue of dozens at a limit of
  hundreds: that held the limit near 250 against a receiver that could take thousands.
- In slow start the round is judged by its fastest answer instead of its average, as
  HyStart++ (RFC 9406) judges slow start by each round's minimum round-trip: a doubling sends
  the round's new requests in one burst, their answers come back in one burst, and the worker's
  one event loop handles that burst answer after answer, so the later ones read late by the
  worker's own work (512 answers at a fifth of a millisecond each: 100 ms), not by a queue in
  the receiver. A receiver that queues delays every answer, the fastest too. That burst ended
  a slow receiver's slow start at 512 and left it to grow by `6 * step` a round from there.
  When the loop is busy for the whole round even the fastest answer is late, so one round
  read as a queue only holds the limit; a second in a row ends slow start, a clear one goes
  on doubling (HyStart++ likewise goes back to slow start when the delay it saw was gone in
  the rounds after, RFC 9406 §4.3).
- A drop (a timeout, no response, 429 or 503: the receiver says it is past its capacity)
  multiplies the limit by `backoff`, at most once a round, as TCP does once per window.
- The growth needs evidence: a round whose peak in flight stayed under half the limit (the
  worker had no more to send) does not raise it.

The limit stays within [floor, ceiling]; `SCHEMA_CONCURRENCY` is the ceiling. What one schema
may really use is also capped by its fair share of the prefetch window (`fair_share`).

Pure: no clock read here, the caller passes a monotonic `now` and the measured round-trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Sign = Literal["ok", "drop", "none"]  # what one answer says about the receiver's capacity
DROP_STATUSES = frozenset({429, 503})
MIN_ROUND = 0.05  # seconds: a round of a fast receiver gathers enough answers to average
INF = float("inf")


def sign_of(status: int | None) -> Sign:
    """An attempt's result, as the limiter reads it (contract §5's outcomes)."""
    if status is None or status in DROP_STATUSES:
        return "drop"  # timeout, connection error, or the receiver asks us to back off
    if status >= 500:
        return "none"  # the receiver's own failure: the circuit's business, not capacity
    return "ok"  # 2xx and other 4xx: answered in its own time


def fair_share(limit: int, window: int, active: int, floor: int) -> int:
    """What one schema may have in flight: its own limit, but never more than an equal share
    of the prefetch window among the schemas that have deliveries in flight or waiting, and
    never less than the floor: min(limit, max(floor, window // active)). One busy schema alone
    may use its whole limit; two share the window half and half; no schema is starved below
    the floor however many there are."""
    return min(limit, max(floor, window // max(active, 1)))


@dataclass(slots=True)
class Limiter:
    floor: int = 4
    ceiling: int = 1024
    initial: int = 64
    window: float = 60.0  # seconds a baseline is kept before it is re-learnt
    backoff: float = 0.9
    slack: float = 0.002  # seconds of round-trip over the baseline that are not a queue
    tolerance: float = 0.1  # ... or this share of the baseline, when that is more
    limit: float = field(default=0.0)
    slow_start: bool = True
    _doubt: bool = False  # in slow start, the last round read as a queue
    _min_now: float = INF
    _min_prev: float = INF
    _window_start: float = -INF
    _round_start: float | None = None
    _round_sum: float = 0.0
    _round_min: float = INF
    _round_n: int = 0
    _round_peak: int = 0
    _last_drop: float = -INF

    def __post_init__(self) -> None:
        if not self.limit:
            self.limit = float(min(max(self.initial, self.floor), self.ceiling))

    @property
    def current(self) -> int:
        return int(self.limit)

    @property
    def baseline(self) -> float:
        return min(self._min_now, self._min_prev)

    def sample(self, now: float, rtt: float, sign: Sign, in_flight: int) -> None:
        """One answer (or its absence) `rtt` seconds after its request went out."""
        if sign == "none":
            return
        if sign == "drop":
            self._drop(now)
            return
        self._learn_baseline(now, rtt)
        if self._round_start is None:
            self._round_start = now
        self._round_sum += rtt
        self._round_min = min(self._round_min, rtt)
        self._round_n += 1
        self._round_peak = max(self._round_peak, in_flight)
        if now - self._round_start >= self._round_length():
            self._end_round(now)

    def restart(self) -> None:
        """The receiver came back (its circuit closed): learn it again from the start."""
        self.limit = float(min(max(self.initial, self.floor), self.ceiling))
        self.slow_start, self._doubt = True, False
        self._min_now = self._min_prev = INF
        self._reset_round(None)

    def _round_length(self) -> float:
        base = self.baseline
        return max(base if base < INF else 0.0, MIN_ROUND)

    def _learn_baseline(self, now: float, rtt: float) -> None:
        if now - self._window_start >= self.window:
            self._min_prev, self._min_now, self._window_start = self._min_now, INF, now
        self._min_now = min(self._min_now, rtt)

    def _drop(self, now: float) -> None:
        self.slow_start = False
        if now - self._last_drop >= self._round_length():
            self._last_drop = now
            self._set(self.limit * self.backoff)
            self._reset_round(None)  # the answers before the cut describe the old limit

    def _end_round(self, now: float) -> None:
        # In slow start, the round's fastest answer (HyStart++): see the module's docstring.
        rtt = self._round_min if self.slow_start else self._round_sum / self._round_n
        used = self._round_peak * 2 >= self.limit
        self._reset_round(now)
        base = self.baseline
        excess = max(0.0, rtt - base - max(self.slack, self.tolerance * base))
        queue = self.limit * excess / rtt if rtt > 0 else 0.0
        step = max(1.0, math.log10(self.limit))
        alpha, beta = 3 * step, 6 * step
        if queue > beta:
            if self.slow_start and not self._doubt:
                self._doubt = True  # one round may be a burst's: hold, and see the next
                return
            self.slow_start = self._doubt = False
            self._set(self.limit - max(step, (queue - beta) / 2))
            return
        self._doubt = False
        if not used:
            return  # no evidence: the worker had no more to send
        if queue <= step:
            self._set(self.limit * 2 if self.slow_start else self.limit + beta)
        elif queue < alpha:
            self._set(self.limit + step)

    def _reset_round(self, start: float | None) -> None:
        self._round_start, self._round_sum, self._round_n, self._round_peak = start, 0.0, 0, 0
        self._round_min = INF

    def _set(self, value: float) -> None:
        self.limit = min(float(self.ceiling), max(float(self.floor), value))


@dataclass(slots=True)
class Limiters:
    """One limiter per schema id, made on first use (schema ids are bounded by the database)."""

    floor: int = 4
    ceiling: int = 1024
    initial: int = 64
    by_schema: dict[int, Limiter] = field(default_factory=dict)

    def of(self, schema_id: int) -> Limiter:
        limiter = self.by_schema.get(schema_id)
        if limiter is None:
            limiter = Limiter(self.floor, self.ceiling, self.initial)
            self.by_schema[schema_id] = limiter
        return limiter
