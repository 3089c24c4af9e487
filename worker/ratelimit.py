"""A schema's rate limit (`schemas.max_per_second`, NULL: none): when may the next request go.

Receivers' APIs often allow so many calls a second. The limit is a GCRA (the generic cell rate
algorithm, a token bucket kept as one timestamp): each request reserves the next slot,
`1 / rate` seconds after the one before, and a small `burst` may go at once after a pause.
A delivery is then told one of three things:

- `Go`: send now;
- `Wait(seconds)`: its slot is reserved that far ahead; wait in memory and send then. Slots are
  handed out in the order deliveries ask, so the waits keep that order;
- `Defer(seconds)`: the slot would be more than `max_wait` ahead (the limit is far below the
  arrival rate): nothing is reserved, and the delivery goes back to the broker through the
  wait queues instead of being held here. At most `rate * max_wait` deliveries of a schema
  wait in memory, whatever the backlog.

`max_wait` is `RATE_WAIT_MAX`, or longer, up to twice it, when the schema's fair share of
the prefetch window holds more than `rate * RATE_WAIT_MAX` deliveries (`patience`): those
messages are held unacked by this worker whether they wait here or not, and deferring them
only makes room for new ones that find the bucket just as full. At 1,000/s with the whole
window of 1,024 that turned 10,000 events into a stream of deferrals, each back 10 s later:
635/s achieved (docs/receivers.md).

With several worker processes each keeps its own bucket and takes a share of the limit:
`share(max_per_second, workers)` divides it by the number of processes that consume the
events (`QUEUE_HOOKS_RATE_LIMIT_WORKERS`, by default `QUEUE_HOOKS_PROCESSES`), so together they
never exceed it; docs/receivers.md says what that costs when the load is uneven.

Pure: the caller passes a monotonic `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Go:
    pass


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


@dataclass(frozen=True, slots=True)
class Defer:
    seconds: float  # how long until a slot would be free: the least the deferral should wait


Decision = Go | Wait | Defer


def share(max_per_second: float | None, workers: int) -> float | None:
    """This process's part of a schema's limit; None: no limit."""
    if max_per_second is None:
        return None
    return max_per_second / max(workers, 1)


@dataclass(slots=True)
class Bucket:
    rate: float  # requests a second, > 0
    max_wait: float = 1.0  # seconds a delivery may wait in memory for its slot
    burst: int = 1  # requests that may go at once after a pause
    tat: float = field(default=float("-inf"))  # theoretical arrival time of the next slot

    def ask(self, now: float, max_wait: float | None = None) -> Decision:
        wait = self.ahead(now)
        if wait > (self.max_wait if max_wait is None else max_wait):
            return Defer(wait)
        self.tat = max(self.tat, now) + 1.0 / self.rate
        return Go() if wait <= 0 else Wait(wait)

    def ahead(self, now: float) -> float:
        """Seconds until the next free slot (<= 0: one is free now). Reserves nothing."""
        return max(self.tat, now) - 1.0 / self.rate * (self.burst - 1) - now

    def give_back(self, now: float) -> None:
        """A reserved slot that was not used (the waiting delivery was cancelled): the next
        one may go that much sooner. Never gives back more than the future holds."""
        self.tat = max(now, self.tat - 1.0 / self.rate)

    def resize(self, rate: float) -> None:
        """The limit changed in the database: keep the reservations, space the next at the
        new rate."""
        self.rate = rate


@dataclass(slots=True)
class Buckets:
    """One bucket per rate-limited schema; a schema without a limit has none."""

    workers: int = 1
    max_wait: float = 1.0
    by_schema: dict[int, Bucket] = field(default_factory=dict)

    def ask(
        self, schema_id: int, max_per_second: float | None, now: float, room: int = 0
    ) -> Decision:
        """`room`: how many deliveries the schema's fair share of the prefetch window holds."""
        bucket = self._bucket(schema_id, max_per_second)
        if bucket is None:
            return Go()
        return bucket.ask(now, patience(bucket.rate, self.max_wait, room))

    def defers(
        self, schema_id: int, max_per_second: float | None, now: float, room: int = 0
    ) -> Defer | None:
        """What `ask` would answer when it is Defer (which reserves nothing); None otherwise."""
        bucket = self._bucket(schema_id, max_per_second)
        if bucket is None:
            return None
        wait = bucket.ahead(now)
        return Defer(wait) if wait > patience(bucket.rate, self.max_wait, room) else None

    def _bucket(self, schema_id: int, max_per_second: float | None) -> Bucket | None:
        rate = share(max_per_second, self.workers)
        if rate is None:
            self.by_schema.pop(schema_id, None)
            return None
        bucket = self.by_schema.get(schema_id)
        if bucket is None:
            bucket = self.by_schema[schema_id] = Bucket(rate, self.max_wait)
        elif bucket.rate != rate:
            bucket.resize(rate)
        return bucket


def patience(rate: float, max_wait: float, room: int) -> float:
    """How far ahead a slot may be for its delivery to wait in memory: `max_wait`, or as long
    as `room` deliveries take at `rate` when that is longer, but never more than twice
    `max_wait`: a limit far below the arrivals still defers instead of holding its messages
    unacked for minutes (RabbitMQ's consumer timeout closes a channel that does)."""
    return max(max_wait, min(room / rate, 2 * max_wait))
