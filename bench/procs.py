"""The processes the benchmark drives: the receiver and `queue-hooks run`, each its own process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.workload import Broker

LOGS = Path(".local/bench")
# Written by the Erlang VM of the bench profile's RabbitMQ (deploy/local/services.sh).
RABBITMQ_PID = Path(".local/bench/rabbitmq/rabbitmq.pid")


def cpu_seconds_of(pid: int, kernel_only: bool = False) -> float:
    """User plus system CPU time a process has used so far (0 once it is gone); with
    `kernel_only`, the system part alone (system calls: sends, receives, wake-ups)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[12]) + (0 if kernel_only else int(fields[11]))
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int, int]:
    """(busy, idle, stolen) clock ticks of all cores since boot (/proc/stat's first line).
    Stolen: time the hypervisor gave this VM's cores to others, neither ours nor idle."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle, stolen = ticks[3] + ticks[4], ticks[7]  # idle + iowait; steal
    return sum(ticks) - idle - stolen, idle, stolen


class Usage:
    """Where a phase's wall time went: each process's CPU seconds over the phase's seconds,
    i.e. in cores (1.0 = one core busy the whole phase; the machine has os.cpu_count()).
    `other` is what the machine did besides these processes (other helpers, PostgreSQL),
    `idle` what no one used, `stolen` what the hypervisor took for other VMs (a shared host:
    every figure of such a phase is lower, and noisier); `worker_kernel` the worker's system
    time, a part of its own.
    Sampled as the phase goes, so that the shares are taken between the first and the last
    arrival at the receiver, not over the worker's start or the tail."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: list[tuple[float, dict[str, float], tuple[int, int, int]]] = []
        self.sample()

    def sample(self) -> None:
        cpu = {name: cpu_seconds_of(pid) for name, pid in self.pids.items()}
        if "worker" in self.pids:
            cpu["worker_kernel"] = cpu_seconds_of(self.pids["worker"], kernel_only=True)
        self.samples.append((time.time(), cpu, _machine_ticks()))

    def shares(self, first: float, last: float) -> dict[str, float]:
        """Between the last sample before `first` and the first one after `last` (wall
        clock, as the receiver's arrivals); the whole run when there are too few."""
        self.sample()
        inside = [s for s in self.samples if s[0] <= first] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= last] or self.samples[-1:]
        (t0, cpu0, ticks0), (t1, cpu1, ticks1) = inside[-1], after[0]
        wall, hz = max(t1 - t0, 1e-9), os.sysconf("SC_CLK_TCK")
        out = {name: (cpu1[name] - cpu0[name]) / wall for name in self.pids}
        out["other"] = max(0.0, (ticks1[0] - ticks0[0]) / hz / wall - sum(out.values()))
        if "worker_kernel" in cpu0:  # a part of the worker's, not counted twice above
            out["worker_kernel"] = (cpu1["worker_kernel"] - cpu0["worker_kernel"]) / wall
        out["idle"] = (ticks1[1] - ticks0[1]) / hz / wall
        out["stolen"] = (ticks1[2] - ticks0[2]) / hz / wall
        return {name: round(share, 2) for name, share in out.items()}


def rabbitmq_pid() -> int | None:
    try:
        return int(RABBITMQ_PID.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Receiver:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None
        self.http: aiohttp.ClientSession | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.receiver", str(self.port), stdout=subprocess.DEVNULL
        )
        self.http = aiohttp.ClientSession()
        async with asyncio.timeout(20):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    await self.stats()
                    return
                await asyncio.sleep(0.1)

    async def _get(self, path: str, method: str = "GET") -> Any:
        assert self.http is not None
        async with self.http.request(method, self.url(path)) as response:
            return orjson.loads(await response.read())

    async def stats(self) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = await self._get("/_stats")
        return result

    async def arrivals(self) -> list[tuple[str, float]]:
        return [(a, b) for a, b in await self._get("/_arrivals")]

    async def reset(self) -> None:
        await self._get("/_reset", "POST")

    async def count(self, path: str) -> int:
        return int((await self.stats()).get(path, {}).get("count", 0))

    async def wait_count(self, path: str, count: int, within: float) -> None:
        async with asyncio.timeout(within):
            while await self.count(path) < count:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.1)

    async def rate(self, path: str) -> float:
        """Deliveries per second between the first and the last arrival."""
        seg = (await self.stats())[path]
        span = seg["last"] - seg["first"]
        return (seg["count"] - 1) / span if span > 0 else 0.0

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.proc is not None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 10)


class Worker:
    """One `queue-hooks run` process, with the default settings unless told otherwise."""

    def __init__(self, name: str, argv: tuple[str, ...] = (), **settings: str) -> None:
        self.name = name
        self.argv = argv  # after `queue-hooks run`, e.g. ("--processes", "2")
        self.env = dict(os.environ)
        self.env.update(
            QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS="true",  # the receiver is on 127.0.0.1
            QUEUE_HOOKS_METRICS_PORT="0",
            QUEUE_HOOKS_SHUTDOWN_GRACE="2s",
        )
        self.env.update({f"QUEUE_HOOKS_{k.upper()}": v for k, v in settings.items()})
        self.proc: asyncio.subprocess.Process | None = None
        self.spy: asyncio.subprocess.Process | None = None
        self.peak_rss_mb = 0.0

    async def start(self, broker: Broker, consumers: int = 1) -> None:
        os.makedirs(LOGS, exist_ok=True)
        with open(LOGS / f"worker-{self.name}.log", "wb") as log:  # noqa: ASYNC230 - tiny
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker", "run", *self.argv, env=self.env, stderr=log,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        if os.environ.get("BENCH_PROFILE"):
            await self._profile(self.proc.pid)
        async with asyncio.timeout(60):
            while await broker.consumers() < consumers:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"worker exited early: see {LOGS}/worker-{self.name}.log")
                await asyncio.sleep(0.05)

    async def _profile(self, pid: int) -> None:
        """BENCH_PROFILE=1: py-spy samples the worker until it exits (collapsed stacks)."""
        out = LOGS / f"profile-{self.name}-{pid}.txt"
        spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
        # native: C frames too (system calls, the event loop), at a higher cost per sample.
        native = ["--native"] if os.environ.get("BENCH_PROFILE") == "native" else []
        self.spy = await asyncio.create_subprocess_exec(
            spy, "record", "--format", "raw", "-r", "250", *native, "-o", str(out),
            "--pid", str(pid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def cpu_seconds(self) -> float:
        """User plus system CPU time the worker has used so far."""
        assert self.proc is not None
        return cpu_seconds_of(self.proc.pid)

    def sample_rss(self) -> float:
        """Peak resident set size so far (VmHWM), in MB."""
        assert self.proc is not None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_mb = int(line.split()[1]) / 1024
        return self.peak_rss_mb

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.sample_rss()
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self.spy is not None:
            await asyncio.wait_for(self.spy.wait(), 60)
