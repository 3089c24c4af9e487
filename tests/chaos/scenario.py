"""One fault case's world: the seeded hooks, the receiver, the worker processes, the figures."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.harness import (
    REPO,
    CountingReceiver,
    Ledger,
    Services,
    Tally,
    WorkerProcess,
    make_events,
    publish_all,
    reset_broker,
    worker_env,
)
from tests.support.helpers import seed_hook, seed_queue, seed_schema
from worker.settings import parse_duration
from worker.store import connect

EVENTS = int(os.environ.get("QH_CHAOS_EVENTS", "2000"))
PREFETCH = 16
QUEUE_ID = 1
RESULTS: list[Tally] = []
REPORT = Path(os.environ.get("QH_CHAOS_REPORT", REPO / ".local" / "chaos-report.json"))


@dataclass
class Scenario:
    services: Services
    receiver: CountingReceiver
    directory: Path
    exchange: str = "cc.events"
    delays: str = "300ms,600ms"
    hooks: dict[str, list[int]] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def delay_seconds(self) -> tuple[float, ...]:
        return tuple(parse_duration(d) for d in self.delays.split(","))

    async def seed(self) -> None:
        conn = await connect(self.services.database_url)
        try:
            await conn.execute(
                "TRUNCATE queue_hooks.hooks, queue_hooks.schemas, queue_hooks.queues"
                " RESTART IDENTITY CASCADE"
            )
            await seed_queue(conn, QUEUE_ID, 1)
            a = await seed_schema(conn, self.receiver.url("/a"), timeout_ms=5000)
            b = await seed_schema(conn, self.receiver.url("/b"), timeout_ms=5000)
            self.hooks = {
                "joined": [await seed_hook(conn, QUEUE_ID, "joined", a)],
                "leaving": [
                    await seed_hook(conn, QUEUE_ID, "leaving", a),
                    await seed_hook(conn, QUEUE_ID, "leaving", b),
                ],
            }
        finally:
            await conn.close()
        await reset_broker(self.services.amqp_url, self.exchange, self.delay_seconds)

    def worker(self, name: str, **env: str) -> WorkerProcess:
        settings = {
            "QUEUE_HOOKS_PREFETCH": str(PREFETCH),
            "QUEUE_HOOKS_RETRY_DELAYS": self.delays,
            "QUEUE_HOOKS_SHUTDOWN_GRACE": "10s",
        }
        settings.update(env)
        process = WorkerProcess(
            name,
            self.directory / f"{name}.log",
            worker_env(self.services.amqp_url, self.services.database_url, **settings),
        )
        self.workers.append(process.start())
        return process

    async def publish(self, count: int = EVENTS) -> Ledger:
        bodies = make_events(count, QUEUE_ID)
        await publish_all(self.services.amqp_url, self.exchange, bodies)
        return Ledger.of(bodies, self.hooks)

    def in_flight_bound(self, incidents: int = 1) -> int:
        """What one worker can hold unacked: a prefetch of events (each with its hooks) and a
        prefetch of retries. Only those can be delivered twice when a worker or its broker
        connection dies."""
        most_hooks = max(len(h) for h in self.hooks.values())
        return incidents * (PREFETCH * most_hooks + PREFETCH)

    def record(self, tally: Tally) -> None:
        RESULTS.append(tally)
        print(json.dumps(tally.row()))

    def crashes(self) -> list[str]:
        return [f"{w.name}: {line}" for w in self.workers for line in w.tracebacks()]
