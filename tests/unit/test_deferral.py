"""Pure: a deferral waits at least as long as its reason asks (an open circuit's next probe, a
rate limit's next slot), never past twice its tier's delay, and counts no attempt."""

from __future__ import annotations

import pytest

from worker.codec import Delivery
from worker.policy import deferral

DELAYS = (10.0, 60.0)


def delivery(deferred: int = 0) -> Delivery:
    return Delivery(1, "e", "leaving", 1, b"{}", attempts=2, deferred=deferred)


@pytest.mark.parametrize(
    ("deferred", "at_least", "tier", "wait"),
    [(0, 0.0, 10.0, 10.0), (0, 4.0, 10.0, 10.0), (0, 15.0, 10.0, 15.0), (0, 99.0, 10.0, 20.0),
     (1, 0.0, 60.0, 60.0), (5, 0.0, 60.0, 60.0)],
)  # fmt: skip
def test_a_deferral_waits_for_its_reason_within_twice_its_tier(
    deferred: int, at_least: float, tier: float, wait: float
) -> None:
    put_off = deferral(delivery(deferred), DELAYS, "circuit open", at_least)
    assert (put_off.tier_delay, put_off.wait) == (tier, wait)
    assert put_off.next.attempts == 2 and put_off.next.deferred == deferred + 1
    assert put_off.next.tier == 0
