"""The worker's HTTP side for ops, on QUEUE_HOOKS_METRICS_PORT (0: none of it).

- `/metrics`: Prometheus text, from the worker's own registry; the queue depths are read from
  the broker (passive declares) at each scrape, so they are as fresh as the scrape.
- `/healthz`: 200 while the process runs its event loop.
- `/readyz`: 200 when connected to RabbitMQ and PostgreSQL and consuming, else 503 naming
  what is missing.

Under `run --processes N` a worker serves none of this: it publishes its readiness and
in-flight count every second and the queue depths every few seconds to the multiprocess
files, and the supervisor serves the sum (worker/supervisor.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from worker.errors import Fatal, one_line
from worker.metrics import Metrics, supervised

log = structlog.get_logger("queue_hooks.health")

Readiness = Callable[[], dict[str, bool]]
Problems = Callable[[], list[str]]
Depths = Callable[[], Awaitable[dict[str, int]]]
DEPTH_TIMEOUT = 2.0  # a scrape must not hang on a broker that does not answer
DEPTH_EVERY = 5  # supervised: queue depths read every this many one-second publishes


def readiness_text(state: dict[str, bool], problems: Sequence[str] = ()) -> tuple[bool, str]:
    """The first line says ready or not; each problem that does not make the worker unready
    (a schema that cannot sign) follows on a line of its own."""
    missing = [name for name, ok in state.items() if not ok]
    if missing:
        text = "not ready: " + ", ".join(f"{name} down" for name in missing)
    else:
        text = "ready: " + ", ".join(f"{name} ok" for name in state)
    return not missing, "\n".join([text, *problems])


class OpsServer:
    def __init__(
        self, port: int, metrics: Metrics, readiness: Readiness, depths: Depths,
        problems: Problems = list,
        registry: CollectorRegistry | None = None,
    ) -> None:  # fmt: skip
        self.port = port
        self._problems = problems
        self._metrics = metrics
        self._registry = registry or metrics.registry  # the supervisor's: its workers' sum
        self._readiness = readiness
        self._depths = depths
        self._runner: web.AppRunner | None = None
        self._publisher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.port:
            if supervised():
                self._publisher = asyncio.create_task(self._publish(), name="metrics-publish")
            return
        app = web.Application()
        app.router.add_get("/metrics", self._scrape)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            # All interfaces: in a container the scraper and the healthcheck come from outside.
            await web.TCPSite(runner, port=self.port, reuse_address=True).start()
        except OSError as exc:
            await runner.cleanup()
            raise Fatal(f"cannot serve metrics on port {self.port}: {one_line(exc)}") from exc
        self._runner = runner
        log.info("serving metrics and health", port=self.port)

    async def _publish(self) -> None:
        turn = 0
        while True:
            self._metrics.publish(all(self._readiness().values()))
            if turn % DEPTH_EVERY == 0:
                await self._refresh_depths()
            turn += 1
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            self._metrics.publish(False)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="alive\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready, text = readiness_text(self._readiness(), self._problems())
        return web.Response(status=200 if ready else 503, text=text + "\n")

    async def _scrape(self, _request: web.Request) -> web.Response:
        await self._refresh_depths()
        return web.Response(
            body=generate_latest(self._registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def _refresh_depths(self) -> None:
        try:
            depths = await asyncio.wait_for(self._depths(), DEPTH_TIMEOUT)
        except Exception as exc:  # broker down: the depths keep their last reading
            log.debug("queue depths unavailable", error=one_line(exc))
            return
        for queue, count in depths.items():
            self._metrics.queue_depth.labels(queue).set(count)
