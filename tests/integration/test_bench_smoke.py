"""The benchmark's code runs (on tiny numbers): a smoke check, no figure is judged here."""

from __future__ import annotations

import asyncio
import os
import sys

import orjson


async def test_the_benchmark_runs_end_to_end_on_tiny_numbers() -> None:
    env = dict(os.environ, QUEUE_HOOKS_LOG_LEVEL="warning")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench", "--quick",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 110)
    assert proc.returncode == 0, err.decode()[-2000:]
    figures = orjson.loads(out.splitlines()[-1])
    assert figures["quick"] is True
    assert figures["machine"]["cores"] == os.cpu_count()
    for key in (
        "ceiling_per_s", "e2e_per_s", "e2e_two_per_s", "slow_per_s", "down_healthy_per_s",
        "hooks_many_per_s", "memory_drain_per_s", "memory_peak_rss_mb", "latency_max_ms",
    ):  # fmt: skip
        assert figures[key] > 0, key
