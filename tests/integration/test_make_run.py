"""`make run`, then Ctrl-C in the same terminal: everything stops, quietly (issue 12, defect 2).

A real terminal (a pty, `make run` its session leader), a real Ctrl-C (the byte the terminal
turns into SIGINT for its foreground process group), typed at five moments, each found by the
line `make run` prints just before it: while RabbitMQ boots, while the migrations run, while
the demo receiver and the API start (and the demo token is made), while the worker starts,
with the worker consuming. About 7 s each: RabbitMQ boots and stops for real. Whatever the
moment: no error, no traceback, make exits quietly, every port closed, the services down and
no process of that run left (each carries a mark in its environment, so the test finds them
whatever they are). At two moments (the demo token, the worker) the line comes right after
or before a fork: the Ctrl-C often finds a child not yet in a session of its own, which dies
of the same SIGINT, at times while the script waits on it: then bash loses that child's exit
status (deploy/local/run-demo.sh says how its stop copes).
"""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The run profile of this checkout, shifted off the ports of a neighbour's test profile (the
# run profile of offset N + 1000 is the test profile of offset N).
OFFSET = int(os.environ.get("QH_PORT_OFFSET", "0")) + 500
PORTS = {
    "postgres": 55432 + OFFSET,
    "rabbitmq": 55672 + OFFSET,
    "rabbitmq's epmd": 55369 + OFFSET,
    "rabbitmq's distribution": 55673 + OFFSET,
    "demo receiver": 8099 + OFFSET,
    "metrics": 9464 + OFFSET,
    "api": 8080 + OFFSET,
}
CTRL_C = b"\x03"
MARK = "QH_TEST_MAKE_RUN"
# What a stop asked for must never print (bash's "Terminated" is a child killed under it,
# "exited during boot" RabbitMQ's log shown for a boot we ended on purpose).
NEVER = (
    "make: ***", "Error", "Traceback", "KeyboardInterrupt", "Terminated", "Killed", "during boot",
)  # fmt: skip


def run_profile_in_use() -> bool:
    state = REPO / ".local" / "run"
    return (state / "postgres" / "data" / "postmaster.pid").exists() or (
        state / "rabbitmq" / "launcher.pid"
    ).exists()


def ctrl_c_make_run(when: bytes, mark: str, within: float = 180.0) -> tuple[int, str]:
    """Starts `make run` on a new terminal, types Ctrl-C once `when` was printed, returns
    make's wait status and everything the terminal showed, once every process holding the
    terminal has gone."""
    env = dict(os.environ, QH_PORT_OFFSET=str(OFFSET), TERM="dumb", **{MARK: mark})
    for name in ("QUEUE_HOOKS_AMQP_URL", "QUEUE_HOOKS_DATABASE_URL"):
        env.pop(name, None)  # make test's services: `make run` brings its own
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session of its own, the pty its controlling terminal
        # As an interactive shell starts make: a suite run in the background (`make test &`)
        # has SIGINT ignored, inherited down to make and its scripts, which cannot trap it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.chdir(REPO)
        os.execvpe("make", ["make", "--no-print-directory", "run"], env)
    shown, typed = b"", False
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: every process of the terminal has gone
                    break
                if not chunk:
                    break
                shown += chunk
            if not typed and when in shown:
                os.write(fd, CTRL_C)
                typed = True
        else:
            os.killpg(pid, signal.SIGKILL)
            pytest.fail(f"make run still going after {within}s:\n{shown.decode(errors='replace')}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert typed, shown.decode(errors="replace")
    return status, shown.decode(errors="replace")


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def marked(mark: str) -> list[str]:
    """The processes whose environment carries the mark: what that `make run` started."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(f"{entry.name} {(entry / 'cmdline').read_bytes()[:120]!r}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def soon(check: Callable[[], bool], seconds: float = 15.0) -> bool:
    """Whether `check` holds within `seconds`: a process stopped is gone a moment after."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def dotenv_kept() -> Iterator[None]:
    """`make run` writes .env (when there is none, or it wrote the one there): the test puts
    back what was there before."""
    dotenv = REPO / ".env"
    before = dotenv.read_bytes() if dotenv.exists() else None
    yield None
    if before is None:
        dotenv.unlink(missing_ok=True)
    else:
        dotenv.write_bytes(before)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "when",
    [
        b"[run] postgres: up",
        b"[run] ready in",
        b"making a demo admin token",
        b"queue-hooks is starting",
        b"worker consuming",
    ],
    ids=["rabbitmq-booting", "migrating", "api-starting", "worker-starting", "consuming"],
)
def test_ctrl_c_stops_everything_quietly(when: bytes, dotenv_kept: None) -> None:
    if run_profile_in_use():
        pytest.skip("`make run` is going in this checkout: the test would stop it")
    mark = uuid.uuid4().hex
    status, shown = ctrl_c_make_run(when, mark)
    # make, interrupted, dies of SIGINT (a shell prints nothing for that) or exits 0.
    assert (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT) or (
        os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    ), (status, shown)
    for word in NEVER:
        assert word not in shown, shown
    assert soon(lambda: not marked(mark)), f"left running: {marked(mark)}\n{shown}"
    for service, port in PORTS.items():
        assert soon(partial(refused, port)), f"{service} still listening on {port}:\n{shown}"
    profile = subprocess.run(
        [REPO / "deploy/local/services.sh", "status", "run"],
        env=dict(os.environ, QH_PORT_OFFSET=str(OFFSET)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert profile.returncode == 3, profile.stdout  # 3: down
    assert "postgres: down" in profile.stdout and "rabbitmq: down" in profile.stdout
    assert not run_profile_in_use()
