"""`make run`, then Ctrl-C in the same terminal: everything stops, quietly (issue 12, defect 2).

A real terminal (a pty, `make run` its session leader), a real Ctrl-C (the byte the terminal
turns into SIGINT for its foreground process group), once while the services start and once
with the worker consuming. About 10 s each: RabbitMQ boots and stops for real.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The run profile of this checkout, shifted off the ports of a neighbour's test profile (the
# run profile of offset N + 1000 is the test profile of offset N).
OFFSET = int(os.environ.get("QH_PORT_OFFSET", "0")) + 500
PORTS = {
    "postgres": 55432 + OFFSET,
    "rabbitmq": 55672 + OFFSET,
    "demo receiver": 8099 + OFFSET,
    "metrics": 9464 + OFFSET,
}
CTRL_C = b"\x03"


def run_profile_in_use() -> bool:
    state = REPO / ".local" / "run"
    return (state / "postgres" / "data" / "postmaster.pid").exists() or (
        state / "rabbitmq" / "launcher.pid"
    ).exists()


def ctrl_c_make_run(when: bytes, within: float = 120.0) -> tuple[int, str]:
    """Starts `make run` on a new terminal, types Ctrl-C once `when` was printed, returns
    make's wait status and everything the terminal showed."""
    env = dict(os.environ, QH_PORT_OFFSET=str(OFFSET), TERM="dumb")
    for name in ("QUEUE_HOOKS_AMQP_URL", "QUEUE_HOOKS_DATABASE_URL"):
        env.pop(name, None)  # make test's services: `make run` brings its own
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session of its own, the pty its controlling terminal
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


@pytest.fixture
def no_dotenv_left() -> Iterator[None]:
    """`make run` writes .env when there is none: the test takes it away again."""
    dotenv = REPO / ".env"
    existed = dotenv.exists()
    yield None
    if not existed:
        dotenv.unlink(missing_ok=True)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "when",
    [b"[run] postgres: up", b"worker consuming"],
    ids=["during-start-up", "consuming"],
)
def test_ctrl_c_stops_everything_quietly(when: bytes, no_dotenv_left: None) -> None:
    if run_profile_in_use():
        pytest.skip("`make run` is going in this checkout: the test would stop it")
    status, shown = ctrl_c_make_run(when)
    # make, interrupted, dies of SIGINT (a shell prints nothing for that) or exits 0.
    assert (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT) or (
        os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    ), (status, shown)
    assert "make: ***" not in shown and "Error" not in shown, shown
    assert "Traceback" not in shown, shown
    for service, port in PORTS.items():
        assert refused(port), f"{service} still listening on {port}:\n{shown}"
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
