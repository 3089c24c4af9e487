"""`queue-hooks run` as ops run it: its own process, with the test settings in its environment."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.support.cli import NO_DOTENV
from tests.support.settings import TEST_DELAYS


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS="true",
        QUEUE_HOOKS_METRICS_PORT="0",
        QUEUE_HOOKS_RETRY_DELAYS=",".join(f"{int(d * 1000)}ms" for d in TEST_DELAYS),
        QUEUE_HOOKS_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


async def start_process(**extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "run",
        env=worker_env(**extra), cwd=NO_DOTENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def wait_consuming(proc: asyncio.subprocess.Process) -> None:
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while True:
            line = await proc.stderr.readline()
            assert line, "the worker exited before consuming"
            if b"worker consuming" in line:
                return
