"""Pure decisions: what an attempt's result means (contract §5), what becomes of a delivery,
and what becomes of a message whose handler raised. No I/O library is imported here: the
settling (worker/settle.py) carries out what these return.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal, assert_never

from worker.codec import Delivery
from worker.errors import Kind
from worker.model import Attempt

DeadReason = Literal["invalid", "rejected", "gone", "exhausted", "disabled", "blocked"]
RETRY_STATUSES = frozenset({408, 425, 429})
REDIRECTS = frozenset({301, 302, 303, 307, 308})  # 304 and the rest of 3xx point nowhere
QUICK_STATUSES = frozenset({502, 503, 504})


# -- whose a retry is --------------------------------------------------------------------------
def not_its_hook(
    hook_id: int, made_for: tuple[int, str], now: tuple[int, str] | None
) -> str | None:
    """Why a delivery made for hook `hook_id` as (queue id, event) `made_for` must not go to
    it as it is `now` (None: disabled or deleted); None when it may. A hook changed while its
    retry waited (the API's update, or SQL) is no longer the one the delivery was made for: a
    `leaving` body never reaches a hook now for `joined` (contract §5, reason `disabled`).
    What the delivery does not say (queue 0, event "": a message from before these headers)
    is not held against it."""
    if now is None:
        return f"hook {hook_id} is disabled or deleted"
    (queue_id, event), (queue_now, event_now) = made_for, now
    if (queue_id and queue_id != queue_now) or (event and event != event_now):
        now_for, was_for = f"{event_now} of queue {queue_now}", f"{event} of queue {queue_id}"
        return f"hook {hook_id} is now for {now_for}, not {was_for}"
    return None


# -- what one attempt means ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    error: str
    retry_after: float | None = None  # seconds the receiver asked for, if it did


@dataclass(frozen=True, slots=True)
class Dead:
    reason: DeadReason
    error: str


Verdict = Delivered | Retry | Dead


def judge(attempt: Attempt, target: str, now: float) -> Verdict:
    """`target`: the URL as errors show it (model.describe_target)."""
    if attempt.blocked:
        return Dead("blocked", f"{attempt.error} ({target})")
    status = attempt.status
    if status is None:
        return Retry(f"{attempt.error} ({target})")
    if 200 <= status < 300:
        return Delivered()
    error = f"HTTP {status} from {target}"
    if status in RETRY_STATUSES or 500 <= status < 600:
        asked = retry_after(attempt.retry_after, now) if status in (429, 503) else None
        return Retry(error, asked)
    if status == 410:
        return Dead("gone", error)
    if status in REDIRECTS:
        return Dead("rejected", error + " (redirects are not followed)")
    return Dead("rejected", error)


def quick_retryable(attempt: Attempt) -> bool:
    """Worth another try within a second: the receiver is restarting, not refusing us."""
    return attempt.refused or attempt.status in QUICK_STATUSES


def retry_after(header: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not header:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():  # str.isdigit passes "²", which float() refuses
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now) if when.tzinfo else None


def tier_wait(delays: tuple[float, ...], tier: int, asked: float | None) -> float | None:
    """How long retry tier `tier` waits; None when the tiers are used up (`exhausted`).

    Retry-After lengthens the tier's wait but never shortens it, and at most doubles it.
    """
    if tier >= len(delays):
        return None
    base = delays[tier]
    if asked is None:
        return base
    return min(max(base, asked), base * 2)


# -- what becomes of a delivery ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Wait:
    """Held by the broker in the wait queue of `tier_delay` for `wait` seconds, then tried
    again as `next`."""

    next: Delivery
    tier_delay: float
    wait: float
    error: str


Outcome = Delivered | Wait | Dead


def after_verdict(delivery: Delivery, verdict: Verdict, delays: tuple[float, ...]) -> Outcome:
    if not isinstance(verdict, Retry):
        return verdict
    wait = tier_wait(delays, delivery.tier, verdict.retry_after)
    if wait is None:
        return Dead("exhausted", verdict.error)
    return Wait(delivery.moved(tier=delivery.tier + 1), delays[delivery.tier], wait, verdict.error)


def deferral(
    delivery: Delivery, delays: tuple[float, ...], error: str, at_least: float = 0.0
) -> Wait:
    """Put off without a request: neither the attempt count nor the tier moves, so the
    delivery keeps its whole series of attempts. Repeated deferrals climb the tiers' delays
    on their own count, so a schema that stays down costs less and less. `at_least`: when it
    may be tried again at the soonest (an open circuit's next probe, a rate limit's next free
    slot); it lengthens the tier's wait as Retry-After does, at most to twice the tier's delay."""
    delay = delays[min(delivery.deferred, len(delays) - 1)]
    wait = min(max(delay, at_least), delay * 2)
    return Wait(delivery.moved(deferred=delivery.deferred + 1), delay, wait, error)


def not_sendable(delivery: Delivery, delays: tuple[float, ...], error: str) -> Outcome:
    """Its schema cannot be sent to as it stands: its secret cannot be read (it is never sent
    unsigned: issue 12, defect 7), or its URL is one no client can use. It takes the retry
    path (no request made, the tier moves), so a schema fixed meanwhile delivers it without
    anyone replaying it; once the tiers are used up it is dead-lettered `exhausted` with the
    error line saying what to fix."""
    return after_verdict(delivery, Retry(error), delays)


# -- what becomes of a message whose handler raised --------------------------------------------
@dataclass(frozen=True, slots=True)
class HandBack:
    """Back to the broker (nack, requeue) after `pause` seconds: an outage we wait out."""

    pause: float


@dataclass(frozen=True, slots=True)
class Stop:
    """Handed back, and the worker stops: it cannot do its job."""


@dataclass(frozen=True, slots=True)
class SetAside:
    """Dead-lettered `invalid` with `error`, and acked: it can never succeed. `loud`: it
    made the worker fail (an error with its traceback), not merely not one of ours."""

    error: str
    loud: bool = False


MessageOutcome = HandBack | Stop | SetAside

# A message that made the worker fail this many times is set aside, so that one message can
# never stop every worker in turn (each failure hands it back and stops that worker).
POISON_AFTER = 3
HAND_BACK_PAUSE = 1.0  # a transient failure is not redelivered hot


def after_error(kind: Kind, error: str, tries: int) -> MessageOutcome:
    """Total over Kind: a new kind fails mypy here (assert_never) and the unit test."""
    match kind:
        case Kind.TRANSIENT:
            return HandBack(HAND_BACK_PAUSE)
        case Kind.PERMANENT:
            return SetAside(error)
        case Kind.FATAL if tries >= POISON_AFTER:
            return SetAside(f"the worker failed on this message {tries} times: {error}", loud=True)
        case Kind.FATAL:
            return Stop()
        case _:
            assert_never(kind)
