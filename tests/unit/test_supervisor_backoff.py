"""The supervisor's restart back-off (worker/supervisor.py)."""

from __future__ import annotations

from worker.supervisor import BACKOFF_MAX, backoff


def test_the_back_off_doubles_with_each_quick_death_up_to_its_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(40) == BACKOFF_MAX
    assert backoff(0) == 0.5
