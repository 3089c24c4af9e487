"""The fault suite's tools: worker processes, a counting receiver, the services, the ledger.

Everything is real: `python -m worker run` subprocesses, the profile's own RabbitMQ and
PostgreSQL (stopped and started through deploy/local/services.sh), an aiohttp receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aio_pika
import orjson
from aiohttp import web

from tests.support.helpers import until
from tests.support.receiver import serve
from worker.broker import topology as t

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "deploy" / "local" / "services.sh"


# -- the services ------------------------------------------------------------------------
@dataclass
class Services:
    """The profile's RabbitMQ and PostgreSQL, as ops would stop and start them."""

    profile: str
    amqp_url: str
    database_url: str

    async def stop(self, which: Literal["rabbitmq", "postgres"]) -> None:
        await self._script("stop", which)

    async def start(self) -> None:
        """Starts whichever is down (the other is left as it is)."""
        await self._script("start")

    def freeze_postgres(self) -> list[int]:
        """SIGSTOP the postmaster and its backends: connections stay open, nothing answers
        (a hung server, or a network that drops packets). Returns the pids to thaw."""
        pid_file = REPO / ".local" / self.profile / "postgres" / "data" / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
        pids = [postmaster, *_children(postmaster)]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    @staticmethod
    def thaw_postgres(pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    async def _script(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(SERVICES), args[0], self.profile, *args[1:],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, f"services.sh {' '.join(args)} failed:\n{out.decode()}"


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
    return found


# -- the broker, seen from outside ----------------------------------------------------------
@contextlib.asynccontextmanager
async def amqp(url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A short-lived connection: the broker may be restarted between two uses."""
    conn = await aio_pika.connect(url)
    try:
        yield await conn.channel(publisher_confirms=True, on_return_raises=True)
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


async def reset_broker(url: str, exchange: str, delays: tuple[float, ...]) -> None:
    async with amqp(url) as channel:
        for spec in t.queue_specs(delays):
            await channel.queue_delete(spec.name)
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)


async def publish_all(url: str, exchange: str, bodies: list[dict[str, Any]]) -> None:
    """Publishes with confirms, a batch at a time; the events queue exists (a worker ran)."""
    async with amqp(url) as channel:
        ex = await channel.get_exchange(exchange)
        for start in range(0, len(bodies), 200):
            await asyncio.gather(
                *(
                    ex.publish(
                        aio_pika.Message(
                            orjson.dumps(body),
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=f"queue.{body['queue_id']}.{body['event']}",
                        mandatory=True,
                    )
                    for body in bodies[start : start + 200]
                )
            )


async def queue_state(url: str, name: str) -> tuple[int, int]:
    """(messages ready, consumers) of one queue."""
    async with amqp(url) as channel:
        queue = await channel.declare_queue(name, passive=True)
        result = queue.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)


async def take_dead_letters(url: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with amqp(url) as channel:
        queue = await channel.get_queue(t.DEAD_QUEUE)
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            got.append(message)
    return got


# -- the receiver ------------------------------------------------------------------------
Answer = Literal["ok", "fail", "close"]


def always_ok(_webhook_id: str, _attempt: int) -> Answer:
    return "ok"


def flaky(fail: float, close: float, seed: int = 6) -> Callable[[str, int], Answer]:
    """Fails `fail` of the requests with 500 and drops the connection on `close` of them."""
    rng = random.Random(seed)

    def answer(_webhook_id: str, _attempt: int) -> Answer:
        roll = rng.random()
        return "close" if roll < close else "fail" if roll < close + fail else "ok"

    return answer


@dataclass
class CountingReceiver:
    """Counts, per `webhook-id`, the requests it answered 2xx: the receiver's view of delivery."""

    delay: float = 0.0
    answer: Callable[[str, int], Answer] = always_ok
    ok: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    failed: int = 0
    closed: int = 0
    bad: list[str] = field(default_factory=list)  # requests that were not what the contract says
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def delivered(self) -> int:
        return sum(self.ok.values())

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner, self.port = await serve(app, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        webhook_id = request.headers.get("webhook-id", "")
        attempt = int(request.headers.get("queue-hooks-attempt", "0"))
        self.requests += 1
        self._check(webhook_id, body)
        if self.delay:
            await asyncio.sleep(self.delay)
        verdict = self.answer(webhook_id, attempt)
        if verdict == "close":
            self.closed += 1
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        if verdict == "fail":
            self.failed += 1
            return web.Response(status=500)
        self.ok[webhook_id] += 1
        return web.Response(status=204)

    def _check(self, webhook_id: str, body: bytes) -> None:
        try:
            doc = orjson.loads(body)
            assert webhook_id == f"{doc['id']}:{doc['hook_id']}"
        except Exception as exc:
            self.bad.append(f"{webhook_id}: {exc!r}")


# -- worker processes ---------------------------------------------------------------------
@dataclass
class WorkerProcess:
    """`python -m worker run`, its log in a file (so a full pipe can never stall it)."""

    name: str
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "run"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self, text: str) -> int:
        return sum(1 for line in self.log().splitlines() if text in line)

    async def wait_log(self, text: str, count: int = 1, within: float = 60.0) -> None:
        async def logged() -> bool:
            assert self.alive, f"{self.name} exited:\n{self.log()[-3000:]}"
            return self.lines(text) >= count

        await until(logged, within)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    async def exit_code(self, within: float = 60.0) -> int:
        proc = self.proc
        assert proc is not None

        async def exited() -> bool:
            return proc.poll() is not None

        await until(exited, within)
        assert proc.returncode is not None
        return proc.returncode

    def tracebacks(self) -> list[str]:
        """Log lines that carry a traceback or an error: a crash, not an expected outage."""
        out = []
        for line in self.log().splitlines():
            if '"level":"error"' in line or "Traceback" in line or '"exception"' in line:
                out.append(line[:500])
        return out


def worker_env(amqp_url: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUE_HOOKS_")}
    env.update(
        QUEUE_HOOKS_AMQP_URL=amqp_url,
        QUEUE_HOOKS_DATABASE_URL=database_url,
        QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS="true",  # the receiver is on 127.0.0.1
        QUEUE_HOOKS_METRICS_PORT="0",
        QUEUE_HOOKS_LOG_FORMAT="json",
        QUEUE_HOOKS_LOG_LEVEL="info",
        QUEUE_HOOKS_CACHE_POLL="500ms",
    )
    env.update(extra)
    return env


# -- events and the ledger ------------------------------------------------------------------
def make_events(count: int, queue_id: int) -> list[dict[str, Any]]:
    """Alternating `joined` (one hook) and `leaving` (two hooks), as the engine sends them."""
    out = []
    for n in range(count):
        name = "joined" if n % 2 == 0 else "leaving"
        out.append(
            {
                "id": str(uuid.uuid4()),
                "event": name,
                "queue_id": str(queue_id),
                "occurred_at": "2026-11-24T10:00:00Z",
                "channel": "call",
                "attempt_id": str(n),
                "variables": {"n": n},
            }
        )
    return out


@dataclass
class Tally:
    case: str
    events: int
    deliveries: int  # expected: one per (event, hook)
    delivered: int  # distinct webhook-ids answered 2xx
    dead: Counter[str]  # dead letters by reason
    duplicates: int  # 2xx answers beyond the first, per webhook-id
    duplicate_bound: int
    lost: int
    requests: int
    faults: str

    def row(self) -> dict[str, object]:
        return {
            "case": self.case,
            "events": self.events,
            "deliveries": self.deliveries,
            "delivered": self.delivered,
            "dead": dict(self.dead),
            "duplicates": self.duplicates,
            "duplicate_bound": self.duplicate_bound,
            "lost": self.lost,
            "requests": self.requests,
            "faults": self.faults,
        }


@dataclass
class Ledger:
    """What was sent, and what became of each delivery: 2xx at the receiver, or a dead letter."""

    expected: set[str]
    events: int
    dead: dict[str, str] = field(default_factory=dict)  # webhook-id -> reason
    dead_errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, bodies: list[dict[str, Any]], hooks: dict[str, list[int]]) -> Ledger:
        expected = {f"{b['id']}:{h}" for b in bodies for h in hooks[b["event"]]}
        return cls(expected, len(bodies))

    def missing(self, receiver: CountingReceiver) -> set[str]:
        return self.expected - receiver.ok.keys() - self.dead.keys()

    async def settle(self, url: str, receiver: CountingReceiver, within: float = 180.0) -> None:
        """Waits until every delivery is accounted for, collecting the dead letters."""
        async with asyncio.timeout(within):
            while True:
                for message in await take_dead_letters(url):
                    h = {k: _text(v) for k, v in message.headers.items()}
                    reason = h.get(t.H_REASON, "")
                    assert reason, f"dead letter without a reason: {h}"
                    self.dead[f"{h.get(t.H_EVENT_ID)}:{h.get(t.H_HOOK_ID)}"] = reason
                    self.dead_errors.append(h.get(t.H_ERROR, ""))
                if not self.missing(receiver):
                    return
                await asyncio.sleep(0.25)

    def tally(self, case: str, receiver: CountingReceiver, bound: int, faults: str) -> Tally:
        delivered = self.expected & receiver.ok.keys()
        return Tally(
            case=case,
            events=self.events,
            deliveries=len(self.expected),
            delivered=len(delivered),
            dead=Counter(self.dead.values()),
            duplicates=sum(receiver.ok[k] - 1 for k in delivered),
            duplicate_bound=bound,
            lost=len(self.missing(receiver)),
            requests=receiver.requests,
            faults=faults,
        )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
