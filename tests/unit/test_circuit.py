"""The circuit per schema (worker/circuit.py): its states, without I/O or a clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.circuit import Circuit, Circuits, State, sign_of


def state(circuit: Circuit) -> State:
    return circuit.state  # read through a call: mypy keeps no narrowing across record()


def opened(threshold: int = 3, open_for: float = 5.0, at: float = 100.0) -> Circuit:
    circuit = Circuit(threshold, open_for)
    for _ in range(threshold):
        assert circuit.allow(at)
        circuit.record("fail", at)
    return circuit


def test_consecutive_failures_open_it_and_a_success_between_resets_the_count() -> None:
    circuit = Circuit(threshold=3, open_for=5.0)
    for sign in ("fail", "fail", "ok", "fail", "fail"):
        circuit.record(sign, 1.0)
    assert state(circuit) is State.CLOSED
    circuit.record("fail", 1.0)
    assert state(circuit) is State.OPEN
    assert not circuit.allow(1.0)


def test_while_open_nothing_goes_until_the_interval_then_one_probe_at_a_time() -> None:
    circuit = opened(at=100.0)
    assert not circuit.allow(104.9)
    assert circuit.retry_in(104.0) == 1.0
    assert circuit.allow(105.0)  # the probe
    assert state(circuit) is State.HALF_OPEN
    assert not circuit.allow(105.1)  # a second one waits for the probe's answer
    assert not circuit.allow(200.0)


def test_a_probe_success_closes_and_a_failure_reopens_for_another_interval() -> None:
    circuit = opened(at=100.0)
    assert circuit.allow(105.0)
    circuit.record("fail", 106.0)
    assert state(circuit) is State.OPEN
    assert not circuit.allow(110.5)
    assert circuit.allow(111.0)
    circuit.record("ok", 111.2)
    assert state(circuit) is State.CLOSED
    assert circuit.allow(111.3) and circuit.allow(111.3)


def test_an_abandoned_probe_lets_the_next_caller_probe_at_once() -> None:
    circuit = opened(at=100.0)
    assert circuit.allow(105.0)
    circuit.abandon()
    assert circuit.allow(105.1)
    circuit.record("none", 105.2)  # blocked by our guard: says nothing, probe again
    assert circuit.allow(105.3)


def test_what_counts_as_a_failure() -> None:
    assert sign_of(None) == "fail"
    assert sign_of(500) == sign_of(503) == "fail"
    assert sign_of(200) == sign_of(404) == sign_of(429) == "ok"
    assert sign_of(None, blocked=True) == "none"


def test_circuits_are_per_schema_and_list_what_is_not_closed() -> None:
    circuits = Circuits(threshold=1, open_for=1.0)
    circuits.of(1).record("fail", 0.0)
    circuits.of(2).record("ok", 0.0)
    assert circuits.not_closed() == {1: State.OPEN}
    circuits.forget({2})
    assert circuits.not_closed() == {}
    assert circuits.of(2).state is State.CLOSED


@given(
    st.lists(
        st.tuples(st.floats(0, 3), st.sampled_from(["allow", "ok", "fail", "none", "abandon"])),
        max_size=200,
    )
)
def test_never_more_than_one_probe_out_while_not_closed(steps: list[tuple[float, str]]) -> None:
    circuit, now, out = Circuit(threshold=2, open_for=1.0), 0.0, 0
    for gap, what in steps:
        now += gap
        if what == "allow":
            if circuit.allow(now) and circuit.state is not State.CLOSED:
                out += 1
                assert out == 1, "a second probe while one is out"
        elif what == "abandon":
            circuit.abandon()
            out = 0
        elif out or circuit.state is State.CLOSED:
            circuit.record(what, now)  # type: ignore[arg-type]
            out = 0
        if circuit.state is State.OPEN:
            assert not circuit.probing
