"""Fixtures of the unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture
async def no_task_left() -> AsyncIterator[None]:
    """An aiormq channel starts its reader task at once: cancel it (and whatever else the test
    left) before the loop closes, or the coroutine is collected unfinished ("never awaited")."""
    yield None
    left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
