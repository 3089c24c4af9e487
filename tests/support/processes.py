"""`queue-hooks run` as ops run it: its own process, with the test settings in its environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator

import httpx

from tests.support.cli import NO_DOTENV, free_port
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


@contextlib.asynccontextmanager
async def api_process(database: str) -> AsyncIterator[str]:
    """`queue-hooks api` on a free port, against `database`; yields its base URL (without
    /api). Its log must hold no traceback, whatever the test did to it."""
    port = free_port()
    env = {
        **os.environ,
        "QUEUE_HOOKS_API_PORT": str(port),
        "QUEUE_HOOKS_LOG_LEVEL": "warning",
        "QUEUE_HOOKS_DATABASE_URL": database,
        "QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS": "false",
    }
    env.pop("QUEUE_HOOKS_SECRET_KEY", None)
    # Its log goes to a file, not a pipe: a pipe read only at the end fills up (64 KiB), and
    # the API, writing its log into it, stops answering (a clean-clone `make test` saw every
    # API test time out from the fuzz test on).
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "api", env=env, cwd=NO_DOTENV,
        stdout=asyncio.subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.returncode is not None:
                raise RuntimeError(f"queue-hooks api exited {proc.returncode}")
            try:
                await client.get(url + "/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    try:
        yield url
    finally:
        proc.terminate()
        await proc.wait()
        log.seek(0)
        err = log.read()
        log.close()
        assert b"Traceback" not in err, err.decode()
