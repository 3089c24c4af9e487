"""The rows of issue 13: receivers as they really are, measured as that issue's table defines them.

    python -m bench receivers          # only these phases (with the ceiling and `slow`)
    python -m bench dead_half degrade  # or some of them

- hookless: a healthy schema's rate while half the events go to a queue with no hooks,
  against its rate alone (all events to it). What an event no hook wants costs.
- dead_half: the healthy schema's rate while the other half goes to a dead receiver (never
  answers, timeout 10 s), against its rate while that half goes to the hookless queue; each
  of its runs measures the hookless half too, so `receivers` runs this and not `hookless`.
  Both are run REPEATS times, the phases of a run one after the other, each ratio within its
  run; the figures are the medians, and every run's ratio is shown beside them: two workers
  run a few seconds apart on a shared 2-core machine differ by several per cent, and one
  run's ratio said as much about the minute it ran in as about the code.
- `slow` (bench/__main__.py): one receiver answering after 200 ms, deliveries/s.
- degrade: a receiver that slows past a knee of concurrency and answers 503 past a wall
  (bench/receiver.py, /degrade/): the mean concurrency it sees once settled, against the knee.
- rated: a schema with `max_per_second` set: the achieved rate against the limit ("n/a" on a
  database without the column).
- cold_start: the worker started with 100,000 hooks in 14,286 queues (7 events each) against
  10 hooks: throughput ratio, peak RSS, seconds from the process's start to the first delivery.
- processes: end to end with `queue-hooks run --processes 1` and `--processes 2` against the
  ceiling.

`leaving` events with all their fields and 20 variables, signed, receivers on loopback, as
every phase of bench/__main__.py.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from bench.procs import Worker
from bench.receiver import DEGRADE_KNEE, DEGRADE_WALL
from bench.workload import SECRET, Target
from worker.store import connect

if TYPE_CHECKING:
    from bench.__main__ import Bench

# Runs of the ceiling and of the hookless and dead phases, for medians (BENCH_REPEATS; --quick: 1).
REPEATS = 3
RATIOS = ("rx_hookless_ratio", "rx_hookless_ratio_per_core", "rx_dead_ratio")
RATE_LIMIT = 1000.0  # per second; --quick: 100
DEGRADE_SECONDS = 9.0  # measured after a third of it; --quick: 2
# The hookless phases' CPU, in cores between the first and the last delivery (bench/procs.py
# Usage): the worker (and its part in the kernel), the broker, the receiver, this process.
USAGE_OF = (
    "worker", "worker_kernel", "rabbitmq", "receiver", "bench", "other", "idle", "stolen"
)  # fmt: skip
EVENTS_OF_TYPE_0 = ("joined", "answered", "offering", "bridged", "missed", "leaving", "processing")


def quick(bench: Bench) -> bool:
    return bench.sizes.n < 1000


async def alone_and_hookless(bench: Bench) -> None:
    """The hookless half, `repeats` times: the figures are the medians (`_medians`)."""
    for _ in range(repeats(bench)):
        await _alone_and_hookless(bench)
    _medians(bench)


async def dead_half(bench: Bench) -> None:
    """Alone, beside the hookless half, beside the dead half: one after the other, `repeats`
    times, each ratio taken within its own run (so a slower minute of the machine moves both
    of its phases), and the medians reported with every run's ratio beside them."""
    for _ in range(repeats(bench)):
        await _alone_and_hookless(bench)
        await _dead(bench)
    _medians(bench)


def repeats(bench: Bench) -> int:
    return 1 if quick(bench) else int(os.environ.get("BENCH_REPEATS", REPEATS))


async def _alone_and_hookless(bench: Bench) -> None:
    n = bench.sizes.n
    await bench.fresh([Target(1, bench.rx.url("/fast/1"))])
    await bench.broker.publish(bench.events(n))
    alone = await bench.drain(Worker("rx-alone"), "/fast/1", n, 600)
    per_delivery = bench.cpu / n  # the worker's CPU seconds per delivered event
    usage = {"alone": bench.usage}
    await bench.fresh([Target(1, bench.rx.url("/fast/1"))])  # queue 2 has no hook
    await bench.broker.publish(bench.events(n, queues=(1, 2)))
    beside = await bench.drain(Worker("rx-hookless"), "/fast/1", n // 2, 600)
    usage["hookless"] = bench.usage
    f: dict[str, Any] = {}
    for phase, shares in usage.items():  # in cores: is the worker the one that is short?
        for proc in USAGE_OF:
            f[f"rx_{phase}_{proc}_cores"] = shares.get(proc, "n/a")
    f["rx_alone_per_s"], f["rx_hookless_per_s"] = round(alone), round(beside)
    f["rx_hookless_ratio"] = round(beside / alone, 3)
    # What the worker's own CPU says, whatever the neighbours do: a hookless event's share of
    # the second run once its deliveries are counted at the first run's cost.
    f["rx_delivery_cpu_us"] = round(per_delivery * 1e6)
    f["rx_hookless_cpu_us"] = round((bench.cpu - per_delivery * n / 2) / (n / 2) * 1e6)
    # The worker is the one busy process (one core, the rest of the machine mostly idle): a
    # neighbour that takes part of its core in one phase moves the ratio by as much. At equal
    # worker CPU, the ratio is what the two phases' costs make it.
    cores = usage["alone"].get("worker"), usage["hookless"].get("worker")
    if cores[0] and cores[1]:
        f["rx_hookless_ratio_per_core"] = round(beside / cores[1] / (alone / cores[0]), 3)
    bench.runs.append(f)


async def _dead(bench: Bench) -> None:
    n = bench.sizes.n
    await bench.fresh(
        [Target(1, bench.rx.url("/fast/1")),
         Target(2, bench.rx.url("/down/2"), bench.sizes.down_timeout_ms)]
    )  # fmt: skip
    await bench.broker.publish(bench.events(n, queues=(1, 2)))
    rate = await bench.drain(Worker("rx-dead-half"), "/fast/1", n // 2, 120, cut=True)
    this_run = bench.runs[-1]  # the alone and hookless phases just before
    f: dict[str, Any] = {"rx_dead_per_s": round(rate)}
    f["rx_dead_ratio"] = round(rate / this_run["rx_hookless_per_s"], 3)
    if bench.cpu:  # not cut short: the worker's CPU, as above
        per_delivery = this_run["rx_delivery_cpu_us"] / 1e6
        f["rx_dead_cpu_us"] = round((bench.cpu - per_delivery * n / 2) / (n / 2) * 1e6)
        for proc in USAGE_OF:  # where the machine's time went meanwhile
            f[f"rx_dead_{proc}_cores"] = bench.usage.get(proc, "n/a")
    this_run.update(f)


def _medians(bench: Bench) -> None:
    """Each figure of the repeated phases: the median over the runs (the lower of the two
    middle ones for an even count); the ratios also with each run's value, in run order."""
    runs, bench.runs = bench.runs, []
    for key in dict.fromkeys(key for run in runs for key in run):  # a run cut short has fewer
        values = [run[key] for run in runs if isinstance(run.get(key), int | float)]
        if values:
            bench.figures[key] = statistics.median_low(values)
    for key in RATIOS:
        values = [str(run[key]) for run in runs if key in run]
        if len(values) > 1:
            bench.figures[f"{key}_runs"] = " ".join(values)


async def degrade(bench: Bench) -> None:
    seconds = 2.0 if quick(bench) else DEGRADE_SECONDS
    path = "/degrade/1"
    await bench.fresh([Target(1, bench.rx.url(path))])
    # More than it can take in the time (3,200/s at the knee): it never runs dry.
    await bench.broker.publish(bench.events(bench.sizes.n * 3 // 2))
    worker = Worker("rx-degrade")
    await worker.start(bench.broker)
    try:
        await asyncio.sleep(seconds / 3)  # settling
        before = (await bench.rx.stats()).get(path, {})
        await asyncio.sleep(seconds * 2 / 3)
        after = (await bench.rx.stats()).get(path, {})
    finally:
        await worker.stop()

    def delta(key: str) -> float:
        return float(after.get(key, 0)) - float(before.get(key, 0))

    answered = delta("count")
    f = bench.figures
    f["rx_degrade_knee"], f["rx_degrade_wall"] = DEGRADE_KNEE, DEGRADE_WALL
    f["rx_degrade_settled"] = round(delta("inflight_sum") / answered, 1) if answered else 0
    f["rx_degrade_peak"] = int(after.get("peak", 0))
    refused = delta("refused")
    f["rx_degrade_503_share"] = round(refused / (answered + refused), 3) if answered else 0


async def rated(bench: Bench) -> None:
    n = bench.sizes.n // 2
    limit = 100.0 if quick(bench) else RATE_LIMIT
    await bench.fresh([Target(1, bench.rx.url("/fast/1"))])
    conn = await connect(bench.dsn)
    try:
        await conn.execute("UPDATE queue_hooks.schemas SET max_per_second = $1", limit)
    except asyncpg.UndefinedColumnError:
        bench.figures["rx_rated_per_s"] = "n/a"  # the database has no rate limits yet
        return
    finally:
        await conn.close()
    await bench.broker.publish(bench.events(n))
    rate = await bench.drain(Worker("rx-rated"), "/fast/1", n, 600)
    f = bench.figures
    f["rx_rated_limit"], f["rx_rated_per_s"] = limit, round(rate)
    f["rx_rated_ratio"] = round(rate / limit, 3)


async def cold_start(bench: Bench) -> None:
    n, results = bench.sizes.n, {}
    for label, total in (("few", bench.sizes.few_hooks), ("many", bench.sizes.many_hooks)):
        await bench.fresh([Target(1, bench.rx.url("/fast/1"))])
        await seed_cold(bench.dsn, total - 1)
        await bench.broker.publish(bench.events(n))
        worker = Worker(f"rx-cold-{label}")
        began = time.time()
        rate = await bench.drain(worker, "/fast/1", n, 600)
        first = (await bench.rx.stats())["/fast/1"]["first"]
        results[label] = (rate, worker.peak_rss_mb, first - began)
    f = bench.figures
    for label, (rate, rss, first) in results.items():
        f[f"rx_cold_{label}_per_s"] = round(rate)
        f[f"rx_cold_{label}_rss_mb"] = round(rss, 1)
        f[f"rx_cold_{label}_first_s"] = round(first, 2)
    f["rx_cold_ratio"] = round(results["many"][0] / results["few"][0], 3)


async def seed_cold(dsn: str, count: int) -> None:
    """`count` more hooks that never fire in the run (their queues get no events): all 7 events
    of queue type 0 on each queue, over 100 schemas; 99,999 of them make 14,286 queues."""
    conn = await connect(dsn)
    try:
        queues = -(-count // len(EVENTS_OF_TYPE_0))
        await conn.execute(
            "INSERT INTO queue_hooks.schemas (domain_id, name, url, secret)"
            " SELECT 1, 'cold ' || g, 'http://127.0.0.1:9/cold/' || g, $1"
            " FROM generate_series(1, 100) g",
            SECRET,
        )
        await conn.execute(
            "INSERT INTO queue_hooks.queues (id, domain_id, name, type, variables)"
            " SELECT 100000 + g, 1, 'cold ' || g, 0, '{\"tenant\": \"cold\"}'::jsonb"
            " FROM generate_series(1, $1::int) g",
            queues,
        )
        await conn.execute(
            "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id)"
            " SELECT 100000 + q, e, (SELECT min(id) FROM queue_hooks.schemas"
            "   WHERE name LIKE 'cold %') + (q % 100)"
            " FROM generate_series(1, $1::int) q, unnest($2::text[]) e"
            " LIMIT $3",
            queues, list(EVENTS_OF_TYPE_0), count,
        )  # fmt: skip
        # Now, not during the measured run: autovacuum comes for 100,000 new rows within a
        # minute, and on two cores its work would be counted against the many hooks.
        await conn.execute("VACUUM ANALYZE queue_hooks.hooks, queue_hooks.queues")
    finally:
        await conn.close()


async def processes(bench: Bench) -> None:
    n = bench.sizes.n
    for count in (1, 2):
        await bench.fresh([Target(1, bench.rx.url("/fast/1"))])
        await bench.broker.publish(bench.events(n))
        worker = Worker(f"rx-processes-{count}", argv=("--processes", str(count)))
        rate = await bench.drain(worker, "/fast/1", n, 600, consumers=count)
        bench.figures[f"rx_processes_{count}_per_s"] = round(rate)
        ceiling = bench.figures.get("ceiling_per_s")
        if ceiling:
            bench.figures[f"rx_processes_{count}_ratio"] = round(rate / ceiling, 3)


Phase = Callable[["Bench"], Awaitable[None]]
PHASES: dict[str, Phase] = {
    "hookless": alone_and_hookless,
    "dead_half": dead_half,
    "degrade": degrade,
    "rated": rated,
    "cold_start": cold_start,
    "processes": processes,
}
# What `python -m bench receivers` (and a whole `make bench`) runs: dead_half measures the
# hookless half in each of its runs, so `hookless` alone is only for asking by name.
DEFAULT = [name for name in PHASES if name != "hookless"]
GROUP = ["ceiling", "slow", *DEFAULT]


def expand(only: list[str]) -> list[str]:
    return [step for name in only for step in (GROUP if name == "receivers" else [name])]


ROWS: list[tuple[str, str, str, str | None]] = [
    ("healthy schema alone", "rx_alone_per_s", "deliveries/s", None),
    ("healthy, half the events hookless", "rx_hookless_per_s", "deliveries/s", None),
    ("hookless half: healthy keeps", "rx_hookless_ratio", "", ">= 0.75"),
    ("  each run", "rx_hookless_ratio_runs", "", None),
    ("the same, per worker core", "rx_hookless_ratio_per_core", "", None),
    ("  each run", "rx_hookless_ratio_per_core_runs", "", None),
    ("worker CPU per delivered event", "rx_delivery_cpu_us", "us", None),
    ("worker CPU per hookless event", "rx_hookless_cpu_us", "us", None),
    *(
        (f"{phase} phase: {proc.replace('_', ' ')} CPU", f"rx_{phase}_{proc}_cores", "cores", None)
        for phase in ("alone", "hookless")
        for proc in USAGE_OF
    ),
    ("healthy, half to a dead receiver", "rx_dead_per_s", "deliveries/s", None),
    ("dead half / hookless half", "rx_dead_ratio", "", ">= 0.9"),
    ("  each run", "rx_dead_ratio_runs", "", None),
    ("worker CPU per dead receiver's event", "rx_dead_cpu_us", "us", None),
    *(
        (f"dead phase: {proc.replace('_', ' ')} CPU", f"rx_dead_{proc}_cores", "cores", None)
        for proc in USAGE_OF
    ),
    ("degrading receiver: its knee", "rx_degrade_knee", "in flight", None),
    ("degrading receiver: its 503 wall", "rx_degrade_wall", "in flight", None),
    ("degrading receiver: settled at", "rx_degrade_settled", "in flight", "near the knee"),
    ("degrading receiver: peak", "rx_degrade_peak", "in flight", None),
    ("degrading receiver: share of 503", "rx_degrade_503_share", "", None),
    ("rate-limited schema: its limit", "rx_rated_limit", "/s", None),
    ("rate-limited schema: achieved", "rx_rated_per_s", "deliveries/s", None),
    ("achieved / limit", "rx_rated_ratio", "", "0.95..1.0"),
    ("cold start, 10 hooks", "rx_cold_few_per_s", "deliveries/s", None),
    ("cold start, 100,000 hooks", "rx_cold_many_per_s", "deliveries/s", None),
    ("many / few hooks", "rx_cold_ratio", "", ">= 0.95"),
    ("peak RSS, 10 hooks", "rx_cold_few_rss_mb", "MB", None),
    ("peak RSS, 100,000 hooks", "rx_cold_many_rss_mb", "MB", "<= 100"),
    ("first delivery, 10 hooks", "rx_cold_few_first_s", "s", None),
    ("first delivery, 100,000 hooks", "rx_cold_many_first_s", "s", "<= 2"),
    ("end to end, --processes 1", "rx_processes_1_per_s", "deliveries/s", None),
    ("--processes 1 / ceiling", "rx_processes_1_ratio", "", None),
    ("end to end, --processes 2", "rx_processes_2_per_s", "deliveries/s", None),
    ("--processes 2 / ceiling", "rx_processes_2_ratio", "", None),
]
