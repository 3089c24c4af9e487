"""`make bench`: the whole path measured against its own RabbitMQ, PostgreSQL and receiver.

    python -m bench [--quick]

Prints a table and, last, one JSON line with every figure. --quick runs the same code on tiny
numbers (a smoke check that it works, not a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson

from bench import api as api_bench
from bench import procs, receivers
from bench.procs import Receiver, Worker
from bench.workload import Broker, Target, event_id, leaving, seed, touch_filler_hook
from worker.broker import topology as t
from worker.settings import Settings


@dataclass(frozen=True)
class Sizes:
    n: int = 20_000  # events for the ceiling, end to end, down, many hooks
    slow: int = 10_000
    latency_rate: int = 200  # events/s
    latency_seconds: int = 10  # measured, after 1 s of warm-up
    many_hooks: int = 100_000
    few_hooks: int = 10
    backlog: int = 100_000
    down_timeout_ms: int = 10_000
    api_hooks: int = 100_000  # hooks of the queue the API searches
    api_samples: int = 300  # requests per measured page
    api_seconds: float = 10.0  # of the mixed load


QUICK = Sizes(
    n=300, slow=200, latency_rate=50, latency_seconds=1, many_hooks=1000, backlog=500,
    down_timeout_ms=2000, api_hooks=500, api_samples=10, api_seconds=1.0,
)  # fmt: skip


class Bench:
    def __init__(self, sizes: Sizes, settings: Settings, receiver: Receiver, broker: Broker):
        self.sizes = sizes
        self.settings = settings
        self.dsn = settings.database_url
        self.rx = receiver
        self.broker = broker
        self.figures: dict[str, Any] = {}
        self.runs: list[dict[str, Any]] = []  # repeated phases' figures, one dict a run
        self.run_no = 0
        self.cpu = 0.0  # CPU seconds the last drained worker used while draining
        self.usage: dict[str, float] = {}  # and where the machine's time went meanwhile

    def events(self, count: int, queues: tuple[int, ...] = (1,)) -> list[tuple[int, bytes]]:
        self.run_no += 1
        return [(queues[i % len(queues)], leaving(self.run_no, i, queues[i % len(queues)]))
                for i in range(count)]  # fmt: skip

    async def fresh(self, targets: list[Target], filler: int = 0) -> None:
        await self.broker.reset()
        await self.rx.reset()
        await seed(self.dsn, targets, filler)

    async def drain(
        self, worker: Worker, path: str, count: int, within: float, cut: bool = False,
        consumers: int = 1,
    ) -> float:  # fmt: skip
        """Start the worker on a backlog; wait for `count` arrivals at `path`; their rate.

        With `cut`, a run still going after `within` seconds is stopped and its rate is what
        arrived per second so far (a stalled worker must not make the benchmark run for hours).
        """
        await worker.start(self.broker, consumers)
        self.cpu = worker.cpu_seconds()
        usage = procs.Usage(self._pids(worker))
        try:
            deadline = time.monotonic() + within
            while (got := await self.rx.count(path)) < count:
                if time.monotonic() > deadline:
                    if not cut:
                        raise TimeoutError(f"{worker.name}: {got} of {count} arrived at {path}")
                    seg = (await self.rx.stats()).get(path, {"first": time.time()})
                    self.cpu = 0.0  # a run cut short says nothing per event
                    return got / (time.time() - seg["first"])
                worker.sample_rss()
                usage.sample()
                await asyncio.sleep(0.05)
            self.cpu = worker.cpu_seconds() - self.cpu
            seg = (await self.rx.stats())[path]
            self.usage = usage.shares(seg["first"], seg["last"])
            return await self.rx.rate(path)
        finally:
            await worker.stop()

    def _pids(self, worker: Worker) -> dict[str, int]:
        assert worker.proc is not None and self.rx.proc is not None
        pids = {"worker": worker.proc.pid, "receiver": self.rx.proc.pid, "bench": os.getpid()}
        rabbitmq = procs.rabbitmq_pid()
        return pids | ({"rabbitmq": rabbitmq} if rabbitmq else {})

    # -- the figures ------------------------------------------------------------------------
    async def ceiling(self) -> None:
        """A bare aio-pika consumer that only acks, same prefetch, same broker: the median of
        `receivers.repeats` runs, every run's rate beside it. One run read 9,029 to 12,438 on
        a quiet machine, and every ratio to the ceiling moved with it."""
        rates = [await self._ceiling_once() for _ in range(receivers.repeats(self))]
        self.figures["ceiling_per_s"] = round(statistics.median_low(rates))
        if len(rates) > 1:
            self.figures["ceiling_per_s_runs"] = " ".join(str(round(rate)) for rate in rates)

    async def _ceiling_once(self) -> float:
        await self.fresh([])
        n = self.sizes.n
        await self.broker.publish(self.events(n))
        conn = await aio_pika.connect(self.settings.amqp_url)
        try:
            channel = await conn.channel()
            await channel.set_qos(prefetch_count=self.settings.prefetch)
            queue = await channel.get_queue(t.EVENTS_QUEUE)
            done = asyncio.Event()
            times: list[float] = []

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                await message.ack()
                times.append(time.perf_counter())
                if len(times) == n:
                    done.set()

            await queue.consume(on_message)
            await asyncio.wait_for(done.wait(), 300)
        finally:
            await conn.close()
        return (n - 1) / (times[-1] - times[0])

    async def end_to_end(self) -> None:
        n = self.sizes.n
        await self.fresh([Target(1, self.rx.url("/fast/1"))])
        await self.broker.publish(self.events(n))
        rate = await self.drain(Worker("e2e"), "/fast/1", n, 600)
        self.figures["e2e_per_s"] = round(rate)
        # CPU per delivery: what a shared or slower machine changes least.
        self.figures["e2e_cpu_us"] = round(self.cpu / n * 1e6)
        self.figures["e2e_ratio"] = round(rate / self.figures["ceiling_per_s"], 3)

    async def end_to_end_two(self) -> None:
        """The same, with two `queue-hooks run` processes (what one process cannot reach)."""
        n = self.sizes.n
        await self.fresh([Target(1, self.rx.url("/fast/1"))])
        await self.broker.publish(self.events(n))
        first = Worker("e2e-two-a")
        await first.start(self.broker)
        try:
            rate = await self.drain(Worker("e2e-two-b"), "/fast/1", n, 600, consumers=2)
        finally:
            await first.stop()
        self.figures["e2e_two_per_s"] = round(rate)
        self.figures["e2e_two_ratio"] = round(rate / self.figures["ceiling_per_s"], 3)

    async def latency(self) -> None:
        rate, seconds = self.sizes.latency_rate, self.sizes.latency_seconds
        await self.fresh([Target(1, self.rx.url("/lat/1"))])
        worker = Worker("latency")
        await worker.start(self.broker)
        try:
            bodies = self.events(rate * (seconds + 1))
            sent: dict[str, float] = {}
            started = time.monotonic()
            tasks = []
            for i, (queue_id, body) in enumerate(bodies):
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
                sent[f"{event_id(self.run_no, i)}:1"] = time.time()
                tasks.append(asyncio.create_task(self.broker.publish_one(queue_id, body)))
            await asyncio.gather(*tasks)
            await self.rx.wait_count("/lat/1", len(bodies), 60)
        finally:
            await worker.stop()
        warm = set(list(sent)[:rate])  # the first second warms up connections
        lat = sorted(
            (at - sent[wid]) * 1000 for wid, at in await self.rx.arrivals() if wid not in warm
        )
        self.figures["latency_p50_ms"] = round(statistics.median(lat), 1)
        self.figures["latency_p99_ms"] = round(lat[int(len(lat) * 0.99) - 1], 1)
        self.figures["latency_max_ms"] = round(lat[-1], 1)

    async def slow(self) -> None:
        n = self.sizes.slow
        await self.fresh([Target(1, self.rx.url("/slow/1"))])
        await self.broker.publish(self.events(n))
        self.figures["slow_per_s"] = round(await self.drain(Worker("slow"), "/slow/1", n, 600))

    async def one_down(self) -> None:
        """Half the events to a healthy schema, half to another: healthy too, then dead."""
        n, rates = self.sizes.n, []
        for other in ("/fast/2", "/down/2"):
            await self.fresh(
                [Target(1, self.rx.url("/fast/1")),
                 Target(2, self.rx.url(other), self.sizes.down_timeout_ms)]
            )  # fmt: skip
            await self.broker.publish(self.events(n, queues=(1, 2)))
            name = "both-up" if other == "/fast/2" else "one-down"
            rates.append(await self.drain(Worker(name), "/fast/1", n // 2, 60, cut=True))
        self.figures["down_healthy_alone_per_s"] = round(rates[0])
        self.figures["down_healthy_per_s"] = round(rates[1])
        self.figures["down_ratio"] = round(rates[1] / rates[0], 3)

    async def many_hooks(self) -> None:
        """The same run with 10 and with 100,000 hooks cached, an admin edit every 2 s."""
        n, rates = self.sizes.n, []
        for total in (self.sizes.few_hooks, self.sizes.many_hooks):
            await self.fresh([Target(1, self.rx.url("/fast/1"))], filler=total - 1)
            await self.broker.publish(self.events(n))
            edits = asyncio.create_task(self._edits())
            try:
                rates.append(await self.drain(Worker(f"hooks-{total}"), "/fast/1", n, 600))
            finally:
                edits.cancel()
        self.figures["hooks_few_per_s"] = round(rates[0])
        self.figures["hooks_many_per_s"] = round(rates[1])
        self.figures["hooks_ratio"] = round(rates[1] / rates[0], 3)

    async def _edits(self) -> None:
        flip = False
        while True:
            await asyncio.sleep(2)
            await touch_filler_hook(self.dsn, flip)
            flip = not flip

    async def api(self) -> None:
        """Its own phase: the admin API (bench/api.py), after the worker's figures."""
        s = self.sizes
        self.figures |= await api_bench.run(
            self.dsn, _free_port(), s.api_hooks, s.api_samples, s.api_seconds
        )

    async def memory(self) -> None:
        n = self.sizes.backlog
        await self.fresh([Target(1, self.rx.url("/fast/1"))])
        await self.broker.publish(self.events(n))
        worker = Worker("memory")
        rate = await self.drain(worker, "/fast/1", n, 900)
        self.figures["memory_peak_rss_mb"] = round(worker.peak_rss_mb, 1)
        self.figures["memory_drain_per_s"] = round(rate)


def machine() -> dict[str, Any]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "host": socket.gethostname(), "cpu": model, "cores": os.cpu_count(),
        "memory_gib": round(mem, 1), "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "loop_ms": loop_ms(),
    }  # fmt: skip


def loop_ms() -> float:
    """How fast this core runs Python now: the best of three runs of a fixed loop, in ms.
    The same VM type ran it twice as slowly on some nights (a busier host), and every
    figure moved with it: this says which kind of night a run had."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


ROWS = [
    ("ceiling (bare aio-pika consumer)", "ceiling_per_s", "events/s", None),
    ("  each run", "ceiling_per_s_runs", "events/s", None),
    ("end to end, one process", "e2e_per_s", "deliveries/s", None),
    ("end to end / ceiling", "e2e_ratio", "", ">= 0.4"),
    ("worker CPU per delivery", "e2e_cpu_us", "us", None),
    ("end to end, two processes", "e2e_two_per_s", "deliveries/s", None),
    ("two processes / ceiling", "e2e_two_ratio", "", ">= 0.4"),
    ("latency p50 at 200/s", "latency_p50_ms", "ms", None),
    ("latency p99 at 200/s", "latency_p99_ms", "ms", "<= 20"),
    ("latency max at 200/s", "latency_max_ms", "ms", None),
    ("slow receiver (200 ms)", "slow_per_s", "deliveries/s", ">= 2000"),
    ("healthy schema, other one up", "down_healthy_alone_per_s", "deliveries/s", None),
    ("healthy schema, other one down", "down_healthy_per_s", "deliveries/s", None),
    ("one receiver down: healthy keeps", "down_ratio", "", ">= 0.8"),
    ("10 hooks cached", "hooks_few_per_s", "deliveries/s", None),
    ("100,000 hooks cached", "hooks_many_per_s", "deliveries/s", None),
    ("many hooks / few hooks", "hooks_ratio", "", ">= 0.9"),
    ("peak RSS, 100,000-event backlog", "memory_peak_rss_mb", "MB", "<= 150"),
    ("drain rate of that backlog", "memory_drain_per_s", "deliveries/s", None),
    *api_bench.ROWS,
    *receivers.ROWS,  # issue 13's rows: bench/receivers.py
]


def table(figures: dict[str, Any]) -> str:
    lines = [f"{'figure':<36} {'value':>10}  {'unit':<13} target"]
    for label, key, unit, target in ROWS:
        if key in figures:
            lines.append(f"{label:<36} {figures[key]:>10}  {unit:<13} {target or ''}")
    return "\n".join(lines)


async def main(quick: bool, only: list[str]) -> None:
    settings = Settings()
    sizes = QUICK if quick else Sizes()
    if quick:  # keep the logs of the last real run
        procs.LOGS = procs.LOGS.with_name("bench-quick")
    receiver = Receiver(int(os.environ.get("QH_BENCH_RECEIVER_PORT", "0")) or _free_port())
    broker = Broker(settings.amqp_url, settings.exchange)
    await receiver.start()
    await broker.open()
    bench = Bench(sizes, settings, receiver, broker)
    info = machine() | {"rabbitmq": broker.version, "date": datetime.now(UTC).isoformat()[:19]}
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    steps = [
        "ceiling",
        "end_to_end",
        "end_to_end_two",
        "latency",
        "slow",
        "one_down",
        "many_hooks",
        "memory",
        "api",
        *receivers.PHASES,
    ]
    only = receivers.expand(only)
    try:
        for step in steps:
            needs_ceiling = step == "ceiling" and any(s.startswith("end_to_end") for s in only)
            if only and step not in only and not needs_ceiling:
                continue
            if not only and step in receivers.PHASES and step not in receivers.DEFAULT:
                continue  # measured within another phase (receivers.DEFAULT)
            started = time.monotonic()
            phase = receivers.PHASES.get(step)
            await (phase(bench) if phase else getattr(bench, step)())
            print(f"  {step}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        await broker.reset()
        await broker.close()
        await receiver.stop()
    print(table(bench.figures))
    print(orjson.dumps({"machine": info, "quick": quick, **bench.figures}).decode())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny numbers: a smoke check")
    parser.add_argument("only", nargs="*", help="run only these steps (e.g. latency slow)")
    args = parser.parse_args()
    import uvloop

    uvloop.run(main(args.quick, args.only))
