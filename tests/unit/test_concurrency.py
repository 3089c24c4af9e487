"""Adaptive concurrency (worker/concurrency.py): the limiter against a simulated receiver.

The receiver serves `knee` requests at once in `base` seconds; beyond that its round-trip
grows with the queue in front of it (base * c / knee), and beyond `wall` it answers 503 at
once to whatever is over. The worker side is saturated: it always has `limit` in flight.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from worker.concurrency import Limiter, fair_share, sign_of


@dataclass
class Degrading:
    knee: int
    wall: int
    base: float = 0.02

    def answer(self, c: int) -> tuple[float, int]:
        """(round-trip of the answered ones, how many got 503) with c in flight."""
        rtt = self.base if c <= self.knee else self.base * min(c, self.wall) / self.knee
        return rtt, max(0, c - self.wall)


def run(limiter: Limiter, rx: Degrading, rounds: int, now: float = 0.0) -> tuple[list[int], float]:
    seen = []
    for _ in range(rounds):
        c = limiter.current
        rtt, refused = rx.answer(c)
        now += rtt
        for _ in range(c - refused):
            limiter.sample(now, rtt, "ok", c)
        for _ in range(refused):
            limiter.sample(now, 0.001, "drop", c)
        seen.append(limiter.current)
    return seen, now


def test_it_settles_near_the_knee_and_never_stays_past_the_wall() -> None:
    limiter = Limiter(floor=4, ceiling=1024, initial=16)
    seen, _ = run(limiter, Degrading(knee=64, wall=128), 3000)
    settled = seen[-500:]
    assert min(settled) >= 64 * 0.9 and max(settled) <= 64 * 1.5, (min(settled), max(settled))
    assert max(seen[-2000:]) < 128


def test_it_recovers_when_the_receiver_does_and_backs_off_when_it_degrades_again() -> None:
    limiter = Limiter(floor=4, ceiling=1024, initial=16)
    _, now = run(limiter, Degrading(knee=64, wall=128), 2000)
    seen, now = run(limiter, Degrading(knee=400, wall=800), 4000, now)
    assert min(seen[-500:]) >= 400 * 0.9, min(seen[-500:])
    seen, _ = run(limiter, Degrading(knee=64, wall=128), 3000, now)
    assert max(seen[-1000:]) < 128
    assert min(seen[-1000:]) >= 64 * 0.9


def test_a_slow_receiver_with_room_takes_the_ceiling() -> None:
    limiter = Limiter(floor=4, ceiling=1024, initial=64)
    seen, _ = run(limiter, Degrading(knee=5000, wall=10000, base=0.2), 100)
    assert seen[-1] == 1024


def test_a_flat_slow_receiver_answering_late_by_the_workers_own_lag_is_not_throttled() -> None:
    """200 ms flat, each answer read up to 15 ms late (the worker's event loop was busy): no
    queue in the receiver, so the limit goes on up, past the 400 that 2,000/s needs."""
    rng = random.Random(7)
    limiter, now, seen = Limiter(floor=4, ceiling=1024, initial=64), 0.0, []
    while now < 5.0:
        c = limiter.current
        now += 0.2
        for _ in range(c):
            limiter.sample(now, 0.2 + rng.uniform(0, 0.015), "ok", c)
        seen.append(limiter.current)
    assert seen[-1] >= 500, seen


def test_a_slow_start_is_not_ended_by_the_workers_own_lag_over_a_burst() -> None:
    """A doubling's answers come back in one burst, and the worker reads the i-th of them
    i * 0.2 ms late (its event loop handles them one after the other), the first on time: no
    queue in the receiver, so slow start goes on to the ceiling. Judged by the round's average
    (up to 100 ms late at 512 in flight) it ended at 512."""
    limiter, now = Limiter(floor=4, ceiling=1024, initial=64), 0.0
    for _ in range(6):
        c = limiter.current
        now += 0.2
        for i in range(c):
            limiter.sample(now + i * 0.0002, 0.2 + i * 0.0002, "ok", c)
    assert limiter.current == 1024
    assert limiter.slow_start


def slow_start_rounds(limiter: Limiter, lateness: list[float]) -> list[int]:
    """Rounds of a 200-ms receiver: each round's answers read a little later one after the
    other (the worker's loop), every one of them `late` more (a queue in the receiver), then
    one more answer that closes the round. The limit after each round."""
    now, seen = 0.0, []
    for late in lateness:
        c = limiter.current
        for i in range(c):
            limiter.sample(now + i * 1e-5, 0.2 + late + i * 0.0002, "ok", c)
        now += 1.0
        limiter.sample(now, 0.2 + late, "ok", c)
        seen.append(limiter.current)
    return seen


def test_a_queue_in_the_receiver_still_ends_the_slow_start() -> None:
    """Every answer late, the fastest too, two rounds in a row: a queue, read as one."""
    limiter = Limiter(floor=4, ceiling=1024, initial=64)
    assert slow_start_rounds(limiter, [0.0, 0.0, 0.05, 0.05]) == [128, 256, 256, 247]
    assert not limiter.slow_start


def test_one_round_late_in_slow_start_holds_the_limit_and_the_next_clear_one_doubles_it() -> None:
    """A loop busy for a whole round makes even its fastest answer late: held, not ended."""
    limiter = Limiter(floor=4, ceiling=1024, initial=64)
    assert slow_start_rounds(limiter, [0.0, 0.0, 0.05, 0.0]) == [128, 256, 256, 512]
    assert limiter.slow_start


def test_past_its_slow_start_it_still_grows_from_64_to_500_in_a_few_seconds() -> None:
    limiter = Limiter(floor=4, ceiling=1024, initial=64)
    limiter.slow_start = False  # as after a first burst read as a queue
    rx = Degrading(knee=5000, wall=10000, base=0.2)
    seen, now = run(limiter, rx, 40)
    assert limiter.current >= 500, seen
    assert now <= 40 * 0.2 + 1e-9  # 40 rounds of 200 ms: 8 s


def test_a_queue_of_a_few_requests_grows_it_slowly_and_a_long_one_shrinks_it() -> None:
    limiter = Limiter(floor=4, ceiling=1024, initial=100)
    limiter.slow_start = False
    baseline, now = 0.02, 0.0
    for _ in range(20):  # learn the baseline, with too few in flight to move the limit
        now += 0.06  # each answer a round of its own (a round lasts at least 50 ms)
        limiter.sample(now, baseline, "ok", 3)
    start = limiter.current
    assert start == 100
    # queue = limit * (avg - base - slack) / avg: 100 * 1 ms / 23 ms = 4.3, between log10
    # (2) and 3 * log10 (6): + log10(limit) a round, not the quick growth of an empty queue.
    for _ in range(10):
        now += 0.06
        limiter.sample(now, baseline + 0.003, "ok", 100)
    assert start < limiter.current <= start + 10 * 2.1
    held = limiter.current
    for _ in range(10):  # 20 ms late: a queue of about 40, above 6 * log10: it shrinks
        now += 0.06
        limiter.sample(now, baseline + 0.02, "ok", 100)
    assert limiter.current < held


def test_timeouts_bring_it_down_to_the_floor_and_at_most_once_a_round() -> None:
    limiter = Limiter(floor=4, ceiling=1024, initial=100)
    for _ in range(50):
        limiter.sample(0.0, 10.0, "drop", 100)  # a burst of timeouts at one instant
    assert limiter.current == 90
    now = 0.0
    for _ in range(200):
        now += 0.1
        limiter.sample(now, 10.0, "drop", 100)
    assert limiter.current == 4


def test_an_idle_schema_is_not_raised_on_no_evidence() -> None:
    limiter = Limiter(floor=4, ceiling=1024, initial=64)
    now = 0.0
    for _ in range(1000):
        now += 0.01
        limiter.sample(now, 0.01, "ok", 3)  # only 3 in flight: the worker has no more
    assert limiter.current == 64


def test_a_receiver_slower_for_good_is_relearnt_after_the_window() -> None:
    limiter = Limiter(floor=4, ceiling=1024, initial=64, window=10.0)
    _, now = run(limiter, Degrading(knee=5000, wall=10000, base=0.005), 200)
    seen, _ = run(limiter, Degrading(knee=5000, wall=10000, base=0.2), 300, now)
    assert seen[-1] >= 200, seen[-1]


def test_signs() -> None:
    assert sign_of(None) == sign_of(429) == sign_of(503) == "drop"
    assert sign_of(200) == sign_of(404) == "ok"
    assert sign_of(500) == "none"


def test_fair_share() -> None:
    assert fair_share(1024, 1024, 1, 4) == 1024
    assert fair_share(1024, 1024, 4, 4) == 256
    assert fair_share(100, 1024, 4, 4) == 100
    assert fair_share(1024, 1024, 1000, 4) == 4
    assert fair_share(1024, 1024, 0, 4) == 1024


@given(
    st.lists(
        st.tuples(
            st.floats(0, 1),
            st.floats(0.0001, 30),
            st.sampled_from(["ok", "drop", "none"]),
            st.integers(0, 2000),
        ),
        max_size=300,
    ),
    st.integers(1, 50),
    st.integers(50, 2000),
)
def test_the_limit_stays_within_floor_and_ceiling(
    samples: list[tuple[float, float, str, int]], floor: int, ceiling: int
) -> None:
    limiter, now = Limiter(floor=floor, ceiling=ceiling, initial=64), 0.0
    for gap, rtt, sign, in_flight in samples:
        now += gap
        limiter.sample(now, rtt, sign, in_flight)  # type: ignore[arg-type]
        assert floor <= limiter.current <= ceiling
