"""A schema's rate limit (worker/ratelimit.py): the GCRA's arithmetic, without a clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.ratelimit import Bucket, Buckets, Defer, Go, Wait, patience, share


def test_requests_are_spaced_at_the_rate_and_waits_keep_their_order() -> None:
    bucket = Bucket(rate=10.0, max_wait=1.0)
    answers = [bucket.ask(0.0) for _ in range(5)]
    assert answers[0] == Go()
    waits = [a.seconds for a in answers[1:] if isinstance(a, Wait)]
    assert waits == sorted(waits) and len(waits) == 4
    assert abs(waits[-1] - 0.4) < 1e-9


def test_a_wait_longer_than_max_wait_defers_and_reserves_nothing() -> None:
    bucket = Bucket(rate=2.0, max_wait=1.0)
    decisions = [bucket.ask(0.0) for _ in range(5)]
    assert [type(d) for d in decisions] == [Go, Wait, Wait, Defer, Defer]
    tat = bucket.tat
    assert isinstance(bucket.ask(0.0), Defer) and bucket.tat == tat
    assert bucket.ask(1.5) == Go()  # time passed: the slots are free again


def test_a_slot_given_back_goes_to_the_next() -> None:
    bucket = Bucket(rate=1.0, max_wait=5.0)
    bucket.ask(0.0)
    bucket.ask(0.0)  # a wait of 1 s, then cancelled
    bucket.give_back(0.0)
    assert bucket.ask(0.0) == Wait(1.0)


def test_the_limit_is_shared_by_the_worker_processes() -> None:
    assert share(None, 4) is None
    assert share(100.0, 4) == 25.0
    assert share(100.0, 0) == 100.0
    buckets = Buckets(workers=2)
    assert buckets.ask(1, None, 0.0) == Go()
    assert buckets.ask(1, 10.0, 0.0) == Go()
    assert buckets.by_schema[1].rate == 5.0
    assert buckets.ask(1, None, 0.0) == Go() and 1 not in buckets.by_schema


@given(
    rate=st.floats(0.5, 5000),
    gaps=st.lists(st.floats(0, 0.01), min_size=1, max_size=300),
)
def test_never_more_than_the_rate_over_any_run(rate: float, gaps: list[float]) -> None:
    bucket, now, sent = Bucket(rate=rate, max_wait=1.0), 0.0, []
    for gap in gaps:
        now += gap
        decision = bucket.ask(now)
        if isinstance(decision, Go):
            sent.append(now)
        elif isinstance(decision, Wait):
            assert 0 < decision.seconds <= 1.0
            sent.append(now + decision.seconds)
    sent.sort()
    span = sent[-1] - sent[0]
    assert len(sent) - 1 <= span * rate + 1e-6 * len(sent)


def test_a_schema_may_wait_for_as_many_slots_as_its_share_of_the_window_holds() -> None:
    buckets = Buckets(workers=1, max_wait=1.0)
    # 1,000/s and a share of 1,024 deliveries: one goes, 1,024 wait in memory, none deferred
    answers = [buckets.ask(1, 1000.0, 0.0, room=1024) for _ in range(1025)]
    assert not any(isinstance(a, Defer) for a in answers)
    assert isinstance(buckets.ask(1, 1000.0, 0.0, room=1024), Defer)  # beyond the share
    # a small share: RATE_WAIT_MAX still holds (1 s of slots at 10/s)
    small = [buckets.ask(2, 10.0, 0.0, room=4) for _ in range(12)]
    assert [isinstance(a, Defer) for a in small] == [False] * 11 + [True]
    assert patience(10.0, 1.0, 4) == 1.0 and patience(1000.0, 1.0, 1536) == 1.536
    assert patience(2.0, 1.0, 1024) == 2.0  # far below the arrivals: at most twice the wait
