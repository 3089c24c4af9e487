"""Names and declarations of every exchange and queue (contract §1, §6).

deploy/rabbitmq/definitions.json declares the same; a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EVENTS_QUEUE = "queue-hooks.events"
RETRY_QUEUE = "queue-hooks.retry"  # deliveries back from a wait tier, to be attempted again
DEAD_QUEUE = "queue-hooks.dead"
WAIT_PREFIX = "queue-hooks.wait."
BINDING_KEY = "queue.#"


def routing_key(queue_id: object, event: object) -> str:
    """`queue.<queue_id>.<event>` (contract §1), cut to the 255 bytes AMQP allows: a broken
    event's long name or id must still go out (the worker reads the body, not the key)."""
    return f"queue.{queue_id}.{event}".encode()[:255].decode(errors="ignore")


# The headers are the codec's (worker/codec.py); named here too for the ops commands and tests.
from worker.codec import (  # noqa: E402
    H_ATTEMPTS,
    H_BATCH,
    H_DEFERRED,
    H_ERROR,
    H_EVENT,
    H_EVENT_ID,
    H_HOOK_ID,
    H_JOBS,
    H_OCCURRED_AT,
    H_QUEUE_ID,
    H_REASON,
    H_ROUTING_KEY,
    H_TIER,
)  # fmt: skip

__all__ = [
    "BINDING_KEY",
    "DEAD_QUEUE",
    "EVENTS_QUEUE",
    "H_ATTEMPTS",
    "H_BATCH",
    "H_DEFERRED",
    "H_ERROR",
    "H_EVENT",
    "H_EVENT_ID",
    "H_HOOK_ID",
    "H_JOBS",
    "H_OCCURRED_AT",
    "H_QUEUE_ID",
    "H_REASON",
    "H_ROUTING_KEY",
    "H_TIER",
    "RETRY_QUEUE",
    "WAIT_PREFIX",
    "QueueSpec",
    "declarations",
    "delay_label",
    "queue_specs",
    "wait_queue",
]


def delay_label(seconds: float) -> str:
    ms = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def wait_queue(seconds: float) -> str:
    """One queue per distinct delay: its name says its delay, so changing the tiers never
    clashes with a queue declared with other arguments."""
    return WAIT_PREFIX + delay_label(seconds)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any]


def queue_specs(delays: tuple[float, ...], quorum_size: int | None = None) -> list[QueueSpec]:
    """`quorum_size`: the replicas of a quorum queue when it is created (issue 14)."""
    quorum: dict[str, Any] = {"x-queue-type": "quorum"}
    if quorum_size is not None:
        quorum["x-quorum-initial-group-size"] = quorum_size
    specs = [
        QueueSpec(EVENTS_QUEUE, quorum),
        QueueSpec(RETRY_QUEUE, quorum),
        QueueSpec(DEAD_QUEUE, {"x-queue-type": "classic"}),
    ]
    for seconds in sorted(set(delays)):
        specs.append(
            QueueSpec(
                wait_queue(seconds),
                {
                    **quorum,
                    # Quorum with at-least-once dead-lettering: a classic queue drops a message
                    # that expires while queue-hooks.retry is unavailable (a broker restart);
                    # this one keeps it until the retry queue has confirmed it (issue 6).
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",  # required by at-least-once
                    # Each message carries its own expiration (Retry-After may lengthen it);
                    # the queue's TTL is only the ceiling, twice the tier's delay.
                    "x-message-ttl": round(seconds * 2000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": RETRY_QUEUE,
                },
            )
        )
    return specs


GROUP_SIZE = "x-quorum-initial-group-size"


def declarations(spec: QueueSpec) -> list[dict[str, Any]]:
    """The arguments to declare `spec` with, in the order to try them.

    RabbitMQ uses a quorum queue's initial group size only when it creates the queue, yet
    refuses a later declare whose size differs from the one it was created with (none
    included). So ours comes first (it creates the queue when there is none), then none (a
    queue of an older version), then the other sizes (a cluster since grown or shrunk)."""
    if spec.arguments.get("x-queue-type") != "quorum":
        return [spec.arguments]
    size = spec.arguments.get(GROUP_SIZE)
    rest = {k: v for k, v in spec.arguments.items() if k != GROUP_SIZE}
    others = [{**rest, GROUP_SIZE: n} for n in range(1, 10) if n != size]
    return [spec.arguments, *([rest] if size is not None else []), *others]
