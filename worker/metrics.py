"""Prometheus metrics, through the ecosystem's own client. Labels stay bounded: event names,
outcomes, reasons, status classes; never event ids, hook ids or URLs."""

from __future__ import annotations

import contextlib
import os
from functools import cache
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from worker.model import Attempt, Snapshot

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LAG = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600, 21600, 86400)
READY_METRIC = "queue_hooks_worker_ready"


def supervised() -> bool:
    """Under `run --processes N` (worker/supervisor.py): prometheus-client's multiprocess mode,
    every value written to a file the supervisor's /metrics adds up."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.events = Counter(
            "queue_hooks_events", "Events consumed, by event type and outcome",
            ["event", "outcome"], registry=r,
        )  # fmt: skip
        self.deliveries = Counter(
            "queue_hooks_deliveries", "Deliveries settled, by outcome and dead-letter reason",
            ["outcome", "reason"], registry=r,
        )  # fmt: skip
        self.responses = Counter(
            "queue_hooks_http_responses", "HTTP attempts by status class (error: no response)",
            ["status_class"], registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "queue_hooks_attempt_duration_seconds", "Duration of one HTTP attempt",
            buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.lag = Histogram(
            "queue_hooks_delivery_lag_seconds", "From the event's occurred_at to its delivery",
            buckets=_LAG, registry=r,
        )  # fmt: skip
        # The multiprocess modes say how the supervisor adds the gauges of its workers up; a
        # single process ignores them.
        self.inflight = Gauge(
            "queue_hooks_in_flight_requests", "HTTP requests in flight", registry=r,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self.cache_entries = Gauge(
            "queue_hooks_hook_cache_entries", "Enabled hooks in the cache", registry=r,
            multiprocess_mode="livemax",
        )  # fmt: skip
        self.cache_refreshes = Counter(
            "queue_hooks_hook_cache_refreshes", "Reloads of the hook cache", registry=r
        )
        self.unsigned = Gauge(
            "queue_hooks_schemas_unsigned",
            "Schemas whose secret cannot be read: their deliveries are not sent", registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "queue_hooks_queue_messages", "Messages ready in our queues", ["queue"], registry=r,
            multiprocess_mode="livemax",
        )  # fmt: skip
        # Labelled by schema id: bounded by the database (the rows of queue_hooks.schemas, a
        # few hundred on a real platform), and a deleted schema's series is removed.
        self.circuit_state = Gauge(
            "queue_hooks_circuit_state",
            "A schema's circuit: 0 closed, 1 half-open (a probe is out), 2 open", ["schema_id"],
            registry=r, multiprocess_mode="livemax",
        )  # fmt: skip
        self.ready = Gauge(
            READY_METRIC, "1 while this worker process is ready (as /readyz)", registry=r,
            multiprocess_mode="liveall",
        )  # fmt: skip

        # Label children looked up once, not at every delivery (labels() takes a lock and
        # builds a key each time); the label values are few and bounded, as above.
        self._event = cache(self.events.labels)
        self._response = cache(self.responses.labels)
        self._delivered = self.deliveries.labels("delivered", "")
        self._retried = self.deliveries.labels("retried", "")
        self._deferred = self.deliveries.labels("deferred", "")
        self.in_flight_now = 0  # read by the gauge at each scrape, not updated twice a request
        self.inflight.set_function(lambda: self.in_flight_now)  # written by publish() if supervised

    def publish(self, ready: bool) -> None:
        """Supervised, every second: what a scrape would have read from this process."""
        self.ready.set(1 if ready else 0)
        self.inflight.set(self.in_flight_now)

    def event_consumed(self, event: str, outcome: str) -> None:
        self._event(event, outcome).inc()

    def delivered(self, lag: float | None = None) -> None:
        self._delivered.inc()
        if lag is not None:
            self.lag.observe(max(lag, 0.0))

    def retried(self) -> None:
        self._retried.inc()

    def deferred(self) -> None:
        self._deferred.inc()

    def dead(self, reason: str) -> None:
        self.deliveries.labels("dead", reason).inc()

    def circuit(self, schema_id: int, state: int) -> None:
        self.circuit_state.labels(str(schema_id)).set(state)

    def circuit_forgotten(self, schema_id: int) -> None:
        with contextlib.suppress(KeyError):
            self.circuit_state.remove(str(schema_id))

    def attempt(self, attempt: Attempt) -> None:
        status = attempt.status
        self._response(f"{status // 100}xx" if status else "error").inc()
        self.duration.observe(attempt.duration)

    def cache_loaded(self, snapshot: Snapshot, _took: float) -> None:
        self.cache_entries.set(len(snapshot.hooks))
        self.unsigned.set(len(snapshot.unsigned()))
        self.cache_refreshes.inc()
