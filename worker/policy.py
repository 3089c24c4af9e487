"""Pure decisions: what an attempt's result means, and how long a retry waits (contract §5)."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from worker.deliver import Attempt, describe_target

DeadReason = Literal["invalid", "rejected", "gone", "exhausted", "disabled", "blocked"]
RETRY_STATUSES = frozenset({408, 425, 429})
QUICK_STATUSES = frozenset({502, 503, 504})


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


def judge(attempt: Attempt, url: str, now: float) -> Verdict:
    target = describe_target(url)
    if attempt.blocked:
        return Dead("blocked", f"{attempt.error} ({target})")
    status = attempt.status
    if status is None:
        return Retry(f"{attempt.error} ({target})")
    if 200 <= status < 300:
        return Delivered()
    error = f"HTTP {status} from {target}"
    if status in RETRY_STATUSES or status >= 500:
        asked = retry_after(attempt.retry_after, now) if status in (429, 503) else None
        return Retry(error, asked)
    if status == 410:
        return Dead("gone", error)
    if 300 <= status < 400:
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
    if text.isdigit():
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
