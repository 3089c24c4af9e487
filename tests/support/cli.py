"""Runs `queue-hooks` as an admin does: its own process, with or without a terminal.

Every run is checked for the house rule: whatever happens, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import pty
import socket
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> str:
        """Stdout of a command that must have succeeded."""
        assert self.code == 0, f"exit {self.code}: {self.err}"
        return self.out

    @property
    def error(self) -> str:
        """The one line a failed command must say (and nothing else on stderr)."""
        assert self.code != 0, f"expected a failure, got exit 0: {self.out}"
        lines = self.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        return lines[0]

    def json(self) -> Any:
        return orjson.loads(self.ok)


# Commands run from an empty folder, so a developer's .env (make run writes one) never leaks in.
NO_DOTENV = tempfile.mkdtemp(prefix="queue-hooks-tests-")


def _environ(env: dict[str, str] | None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "QUEUE_HOOKS_SECRET_KEY"}
    environ.update({"QUEUE_HOOKS_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"})
    environ.update(env or {})
    return environ


async def cli(
    *args: object, env: dict[str, str] | None = None, stdin: bytes = b"", cwd: object = None
) -> Ran:
    """`queue-hooks ARGS...` with stdin a pipe (no terminal), as in a script or CI; from an
    empty folder unless `cwd` names one (with a `.env`, say)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", *map(str, args),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=_environ(env), cwd=str(cwd or NO_DOTENV),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    return _checked(proc.returncode, out, err)


async def cli_on_terminal(*args: object, typed: str) -> Ran:
    """`queue-hooks ARGS...` with stdin a terminal on which the admin types `typed`."""
    controller, terminal = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "worker", *map(str, args),
            stdin=terminal, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=_environ(None), cwd=NO_DOTENV,
        )  # fmt: skip
    finally:
        os.close(terminal)
    try:
        os.write(controller, typed.encode())  # the terminal holds it until the prompt reads
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        os.close(controller)
    return _checked(proc.returncode, out, err)


def _checked(code: int | None, out: bytes, err: bytes) -> Ran:
    ran = Ran(code if code is not None else -1, out.decode(), err.decode())
    assert "Traceback" not in ran.err, ran.err
    return ran


async def queue_hooks(*args: str, stdin: str | None = None, **env: str) -> Ran:
    """`cli` for ops' commands: keyword arguments are extra environment variables."""
    extra = {"QUEUE_HOOKS_METRICS_PORT": "0", **env}
    return await cli(*args, env=extra, stdin=stdin.encode() if stdin else b"")


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; it stays free unless raced)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
