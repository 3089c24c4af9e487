"""`queue-hooks run --processes N`: N worker processes and one supervisor, one command a machine.

One worker process is one core (asyncio, and the GIL). With N > 1 this process runs no worker
itself; it starts N children (`queue-hooks run --processes 1`, the worker as with N = 1, with
`QUEUE_HOOKS_PROCESSES=1` and no metrics port of their own) and:

- forwards SIGTERM and SIGINT to every child, waits for all of them within the shutdown grace
  (plus a margin: each drains, then closes), kills what is left after that, and exits 0 only
  when every child did;
- restarts a child that dies when no stop was asked, after a back-off that doubles with each
  quick death (0.5 s, 1 s, 2 s ... at most 30 s; a child that ran 30 s starts again from
  0.5 s), each death logged with its exit status;
- serves one `/metrics` for all of them: prometheus-client's multiprocess mode. The children
  write their samples to files in a private temporary folder (`PROMETHEUS_MULTIPROC_DIR`),
  which `MultiProcessCollector` adds up at each scrape; the counters of a child that died
  stay counted. `/readyz` is ready when every child reports ready (a gauge each child sets
  every second, worker/health.py).

Each child keeps its own circuits, limits and hook cache: docs/receivers.md says what that
means. The children divide each schema's `max_per_second` by N (`QUEUE_HOOKS_RATE_LIMIT_WORKERS`
is passed down), since all N consume the same events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, multiprocess

from worker.health import OpsServer
from worker.metrics import READY_METRIC, Metrics
from worker.settings import Settings

log = structlog.get_logger("queue_hooks.supervisor")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE = 30.0  # seconds a child must have run for its next death to count as the first
STOP_MARGIN = 10.0  # beyond the shutdown grace: a child's drain, then its connections closing


def backoff(quick_deaths: int) -> float:
    """Seconds before restarting a child that died `quick_deaths` times in a row quickly."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(quick_deaths - 1, 0)))


@dataclass
class Child:
    index: int
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    quick_deaths: int = 0


class Supervisor:
    def __init__(self, settings: Settings, processes: int, command: Sequence[str] | None = None):
        self.settings = settings
        self.children = [Child(i + 1) for i in range(processes)]
        self.command = list(command or [sys.executable, "-m", "worker", "run", "--processes", "1"])
        self.folder = ""
        self._stop = asyncio.Event()
        self.registry = CollectorRegistry()
        self.ops = OpsServer(
            settings.metrics_port, Metrics(), self.readiness, _no_depths, registry=self.registry
        )

    def stop(self, sig: signal.Signals) -> None:
        if not self._stop.is_set():
            log.info("stopping worker processes", signal=sig.name)
        self._stop.set()
        for child in self.children:
            if child.proc is not None and child.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(sig)

    def _env(self, child: Child) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PROMETHEUS_MULTIPROC_DIR=self.folder,
            QUEUE_HOOKS_PROCESSES="1",
            QUEUE_HOOKS_METRICS_PORT="0",
            QUEUE_HOOKS_RATE_LIMIT_WORKERS=str(self.settings.rate_share_workers),
            QUEUE_HOOKS_WORKER_INDEX=str(child.index),
        )
        return env

    async def _spawn(self, child: Child) -> None:
        child.proc = await asyncio.create_subprocess_exec(*self.command, env=self._env(child))
        child.started = time.monotonic()
        log.info("worker process started", worker=child.index, pid=child.proc.pid)

    async def _watch(self, child: Child) -> None:
        """Keep one child running until the stop; restart it when it dies before that."""
        while True:
            assert child.proc is not None
            code = await child.proc.wait()
            multiprocess.mark_process_dead(child.proc.pid, self.folder)  # type: ignore[no-untyped-call]
            if self._stop.is_set():
                return
            ran = time.monotonic() - child.started
            child.quick_deaths = 1 if ran >= STABLE else child.quick_deaths + 1
            delay = backoff(child.quick_deaths)
            log.warning(
                "worker process died, restarting", worker=child.index, pid=child.proc.pid,
                exit=_status(code), ran_s=round(ran, 1), restart_in_s=delay,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return
            await self._spawn(child)

    def readiness(self) -> dict[str, bool]:
        """/readyz: each child alive and reporting ready through its gauge."""
        ready: dict[str, float] = {}
        for metric in self.registry.collect():
            if metric.name == READY_METRIC:
                ready = {s.labels.get("pid", ""): s.value for s in metric.samples}
        return {
            f"worker {c.index}": c.proc is not None
            and c.proc.returncode is None
            and ready.get(str(c.proc.pid), 0.0) == 1.0
            for c in self.children
        }

    async def run(self) -> int:
        """Until SIGTERM or SIGINT; the exit status: 0 when every child stopped cleanly."""
        self.folder = tempfile.mkdtemp(prefix="queue-hooks-metrics-")
        multiprocess.MultiProcessCollector(self.registry, path=self.folder)  # type: ignore[no-untyped-call]
        watchers: list[asyncio.Task[None]] = []
        try:
            await self.ops.start()
            for child in self.children:
                await self._spawn(child)
                watchers.append(asyncio.create_task(self._watch(child)))
            await self._stop.wait()
            return await self._wait_all(watchers)
        finally:
            for task in watchers:
                task.cancel()
            self._kill_all()
            await self.ops.stop()
            shutil.rmtree(self.folder, ignore_errors=True)

    async def _wait_all(self, watchers: list[asyncio.Task[None]]) -> int:
        within = self.settings.shutdown_grace + STOP_MARGIN
        _done, late = await asyncio.wait(watchers, timeout=within)
        if late:
            log.error("worker processes did not stop in time, killed", within_s=within)
            self._kill_all()
            return 1
        codes = [c.proc.returncode for c in self.children if c.proc is not None]
        if any(codes):
            log.error("a worker process stopped with an error", exits=codes)
            return 1
        log.info("worker processes stopped", processes=len(self.children))
        return 0

    def _kill_all(self) -> None:
        for child in self.children:
            if child.proc is not None and child.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()


async def _no_depths() -> dict[str, int]:
    return {}  # the children report the queue depths (worker/health.py)


def _status(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"


async def supervise(settings: Settings, processes: int) -> int:
    supervisor = Supervisor(settings, processes)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.stop, sig)
    return await supervisor.run()
