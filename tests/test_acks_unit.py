"""The ack plan: every finished message acked exactly once, none before it is finished."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.broker.acks import AckPlan


def test_a_run_from_the_lowest_is_one_multiple_ack_and_the_rest_go_singly() -> None:
    plan = AckPlan()
    for tag in (1, 2, 3, 5, 7):
        plan.finish(tag)
    assert plan.take() == (3, [5, 7])
    plan.finish(4)
    plan.finish(6)
    assert plan.take() == (6, [])  # 5 was acked singly: the run passes over it
    assert plan.take() == (None, [])


def test_a_nacked_message_is_passed_over_not_acked() -> None:
    plan = AckPlan()
    plan.settle(1)
    plan.finish(2)
    assert plan.take() == (2, [])


@given(
    st.permutations(range(1, 41)),
    st.sets(st.integers(1, 40), max_size=8),
    st.lists(st.integers(0, 40), max_size=8),
)
def test_any_order_of_finishing_acks_each_finished_tag_once(
    order: list[int], nacked: set[int], flush_points: list[int]
) -> None:
    plan = AckPlan()
    state: dict[int, str] = {}  # tag -> "running" | "finished" | "acked" | "nacked"
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
