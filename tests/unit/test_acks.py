"""The ack plan: every finished message acked exactly once, none before it is finished."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.broker.acks import AckPlan


def delivered(*tags: int) -> AckPlan:
    plan = AckPlan()
    for tag in tags:
        plan.deliver(tag)
    return plan


def test_a_run_below_the_lowest_still_open_is_one_multiple_ack_and_the_rest_go_singly() -> None:
    plan = delivered(*range(1, 8))
    for tag in (1, 2, 3, 5, 7):
        plan.finish(tag)
    assert plan.take() == (3, [5, 7])  # 4 and 6 are still being handled
    plan.finish(4)
    plan.finish(6)
    assert plan.take() == (6, [])  # 5 and 7 were acked singly: a multiple ack passes them
    assert plan.take() == (None, [])


def test_a_nacked_message_no_longer_holds_back_a_multiple_ack() -> None:
    plan = delivered(1, 2)
    plan.settle(1)
    plan.finish(2)
    assert plan.take() == (2, [])


def test_what_it_keeps_is_bounded_by_what_is_open_not_by_what_was_acked() -> None:
    plan = delivered(1)  # a request that hangs
    for tag in range(2, 10_002):
        plan.deliver(tag)
        plan.finish(tag)
        plan.take()
    assert plan.open == {1}


@given(
    st.permutations(range(1, 41)),
    st.sets(st.integers(1, 40), max_size=8),
    st.lists(st.integers(0, 40), max_size=8),
)
def test_any_order_of_finishing_acks_each_finished_tag_once(
    order: list[int], nacked: set[int], flush_points: list[int]
) -> None:
    plan = delivered(*range(1, 41))
    state: dict[int, str] = {}  # tag -> "finished" | "acked" | "nacked"; absent: being handled
    flushes = set(flush_points)

    def flush() -> None:
        top, singles = plan.take()
        if top is not None:
            covered = [t for t in range(1, top + 1) if state.get(t) not in ("acked", "nacked")]
            assert top in covered, "a multiple ack must name an outstanding tag"
            for t in covered:
                assert state.get(t) == "finished", f"tag {t} acked before it finished"
                state[t] = "acked"
        for t in singles:
            assert state.get(t) == "finished", f"tag {t} acked twice or too early"
            state[t] = "acked"

    for step, tag in enumerate(order):
        if tag in nacked:
            plan.settle(tag)
            state[tag] = "nacked"
        else:
            plan.finish(tag)
            state[tag] = "finished"
        if step in flushes:
            flush()
    flush()
    assert all(state[t] in ("acked", "nacked") for t in range(1, 41))
