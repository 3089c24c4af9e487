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
