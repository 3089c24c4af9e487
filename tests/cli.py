"""Running `queue-hooks` as ops do: a real process, its output and exit code."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def queue_hooks(*args: str, stdin: str | None = None, **env: str) -> Result:
    """`queue-hooks ARGS` against the test services (the environment `make test` sets)."""
    full = dict(os.environ, QUEUE_HOOKS_METRICS_PORT="0", QUEUE_HOOKS_LOG_LEVEL="warning")
    full.update(env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", *args, env=full, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else b""), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; it stays free unless raced)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
