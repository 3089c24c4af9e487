"""The per-schema gate: a slot, a turn while the schema progresses, a deferral when stalled."""

from __future__ import annotations

import asyncio

from worker.gate import Gate


async def test_a_waiter_gets_the_slot_released_by_a_finished_request() -> None:
    gate = Gate(limit=1, stall=10.0)
    assert await gate.enter()
    waiter = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    assert not waiter.done()
    gate.release()
    assert await waiter
    assert gate.busy == 1  # the slot passed on, not freed
    gate.release()
    assert gate.busy == 0


async def test_a_stalled_schema_defers_its_waiters_and_newcomers() -> None:
    gate = Gate(limit=1, stall=0.05)
    assert await gate.enter()
    assert not await gate.enter()  # waited past the stall: defer
    assert not await gate.enter()  # still no progress: at once
    assert not gate.waiters
    assert gate.first_report()  # logged once per stall
    assert not gate.first_report()
    gate.release()
    assert gate.first_report()  # progress ended that stall
    assert await gate.enter()  # idle again: a slot


async def test_a_cancelled_waiter_leaves_no_trace() -> None:
    gate = Gate(limit=1, stall=10.0)
    assert await gate.enter()
    waiter = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert not gate.waiters
    gate.release()
    assert gate.busy == 0


async def test_a_raised_limit_lets_waiters_in_and_a_lowered_one_holds_them_back() -> None:
    gate = Gate(limit=1, stall=10.0)
    assert await gate.enter()
    waiters = [asyncio.create_task(gate.enter()) for _ in range(3)]
    await asyncio.sleep(0)
    gate.resize(3)  # the adaptive limit grew: two of them go at once
    assert gate.busy == 3
    assert await asyncio.wait_for(waiters[0], 5) and await asyncio.wait_for(waiters[1], 5)
    assert not waiters[2].done()
    gate.resize(1)  # it shrank: finished requests free slots until 1 is in flight
    gate.release()
    gate.release()
    await asyncio.sleep(0)
    assert not waiters[2].done() and gate.busy == 1
    gate.release()
    assert await waiters[2]
    assert gate.busy == 1
