"""Admission.put_off_now: the put-off `enter` would decide, known with nothing reserved, or
None (docs/receivers.md, "A dead receiver's events"); and the wait batches' own futures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from worker.admission import Admission, PutOff
from worker.broker.batch import WaitPublisher
from worker.circuit import State
from worker.metrics import Metrics
from worker.model import Attempt, Schema
from worker.settings import Settings


def admission(**tuning: Any) -> Admission:
    values: dict[str, Any] = {"retry_delays": (10.0,), "circuit_failures": 1} | tuning
    return Admission(Settings(_env_file=None, **values), Metrics())


def schema(**changes: Any) -> Schema:
    values: dict[str, Any] = {
        "id": 3, "domain_id": 1, "name": "crm", "url": "https://crm.example/hook",
        "secret": None, "headers": (), "timeout": 5.0,
    }  # fmt: skip
    return Schema(**(values | changes))


async def test_an_idle_or_free_schema_is_left_to_enter() -> None:
    a = admission()
    assert a.put_off_now(schema()) is None  # no gate yet: nothing in flight
    slot = await a.enter(schema())
    assert not isinstance(slot, PutOff)
    assert a.put_off_now(schema()) is None  # a slot is free
    a.leave(slot, Attempt(204, 0.01))


async def test_an_open_circuit_is_put_off_as_enter_puts_it_off() -> None:
    a = admission()
    slot = await a.enter(schema())
    assert not isinstance(slot, PutOff)
    a.leave(slot, Attempt(500, 0.01))  # one failure opens it (circuit_failures=1)
    now = a.put_off_now(schema())
    later = await a.enter(schema())
    assert isinstance(now, PutOff) and isinstance(later, PutOff)
    assert now.error == later.error and "circuit open" in now.error
    assert 0 < later.at_least <= now.at_least <= 5.0


async def test_a_circuit_due_for_a_probe_leaves_the_probe_to_enter() -> None:
    a = admission(circuit_open=0.0)
    a.circuits.of(3).record("fail", time.monotonic())
    assert a.circuits.of(3).state is State.OPEN
    assert a.put_off_now(schema()) is None
    assert a.circuits.of(3).state is State.OPEN and not a.circuits.of(3).probing  # not taken
    probe = await a.enter(schema())
    assert not isinstance(probe, PutOff) and a.circuits.of(3).probing


async def test_a_rate_limit_far_behind_is_put_off_and_reserves_nothing() -> None:
    a = admission(rate_wait_max=0.5)
    limited = schema(max_per_second=0.5)
    first = await a.enter(limited)  # the one free slot; the next is 2 s ahead, past 2 x 0.5
    assert not isinstance(first, PutOff)
    tat = a.buckets.by_schema[3].tat
    now = a.put_off_now(limited)
    assert isinstance(now, PutOff) and "rate limit" in now.error and now.at_least > 1.0
    assert a.buckets.by_schema[3].tat == tat  # nothing reserved
    later = await a.enter(limited)
    assert isinstance(later, PutOff) and later.error == now.error
    a.leave(first, Attempt(204, 0.01))


async def test_a_rate_limit_with_room_is_left_to_enter_unreserved() -> None:
    a = admission()
    limited = schema(max_per_second=100.0)
    assert a.put_off_now(limited) is None
    assert a.buckets.by_schema[3].tat == float("-inf")  # `enter` reserves, not this


async def test_a_stalled_schema_is_put_off_loudly_once_per_stall() -> None:
    a = admission(schema_concurrency=1, schema_concurrency_floor=1, schema_stall=0.0)
    slot = await a.enter(schema())  # its one slot hangs
    assert not isinstance(slot, PutOff)
    while not a.gates[3].stalled():  # noqa: ASYNC110 - a stall is a span of time
        await asyncio.sleep(0.001)
    first, second = a.put_off_now(schema()), a.put_off_now(schema())
    assert isinstance(first, PutOff) and isinstance(second, PutOff)
    assert "none finished lately" in first.error and first.loud and not second.loud
    a.leave(slot, None)


async def test_nothing_is_put_off_without_wait_tiers() -> None:
    a = admission(retry_delays=(), circuit_open=60.0)
    a.circuits.of(3).record("fail", time.monotonic())
    assert a.put_off_now(schema()) is None


# -- each delivery of a wait batch has its own future ----------------------------------------
class Publishes:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, Any]]] = []
        self.answer: asyncio.Future[None] | None = None

    async def __call__(
        self, body: bytes, headers: dict[str, Any], _type: str, _delay: float, _wait: float
    ) -> None:
        self.sent.append((body, headers))
        self.answer = asyncio.get_running_loop().create_future()
        await self.answer

    async def out(self, count: int) -> None:
        """Until `count` publishes have gone out."""
        async with asyncio.timeout(5):
            while len(self.sent) < count:  # noqa: ASYNC110 - a turn of the loop at a time
                await asyncio.sleep(0)

    def confirm(self, error: BaseException | None = None) -> None:
        assert self.answer is not None
        if error is None:
            self.answer.set_result(None)
        else:
            self.answer.set_exception(error)


async def test_a_batch_confirms_each_waiter_and_one_giving_up_touches_no_other() -> None:
    publish = Publishes()
    waits = WaitPublisher(publish)
    lone = waits.put(b'{"a":1}', {"n": 0}, 10.0, 10.0)
    await publish.out(1)  # the lone one goes at the next turn; the rest gather behind it
    gathered = [waits.put(b'{"b":%d}' % i, {"n": i}, 10.0, 10.0) for i in range(1, 4)]
    gathered[0].cancel()  # a shutdown gave up on it: its batch goes all the same
    publish.confirm()
    await lone
    await publish.out(2)
    assert publish.sent[1][1] == {"queue-hooks-batch": 2}
    publish.confirm()
    await asyncio.gather(*gathered[1:])
    assert gathered[0].cancelled()


async def test_a_failed_batch_hands_each_waiter_its_error() -> None:
    publish = Publishes()
    waits = WaitPublisher(publish)
    first = waits.put(b"{}", {}, 10.0, 10.0)
    await publish.out(1)
    rest = [waits.put(b"{}", {"n": i}, 10.0, 10.0) for i in range(3)]
    publish.confirm()
    await first
    await publish.out(2)
    publish.confirm(ConnectionResetError("gone"))
    for waiter in rest:
        with pytest.raises(ConnectionResetError):
            await waiter
