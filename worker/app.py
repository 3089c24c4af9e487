"""`queue-hooks run`: wire the steps together, run until SIGTERM or SIGINT, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable

import structlog

from worker import secrets
from worker.broker import Broker
from worker.deliver import Sender
from worker.errors import Fatal
from worker.health import OpsServer
from worker.metrics import Metrics
from worker.pipeline import Pipeline
from worker.settings import Settings
from worker.settle import Settler
from worker.store import HookCache, wait_for_database
from worker.store.migrate import ensure_migrated

log = structlog.get_logger("queue_hooks.worker")


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        key = settings.secret_key.get_secret_value() if settings.secret_key else None
        self.metrics = Metrics()
        self.sender = Sender(settings.allow_private_targets)
        self.cache = HookCache(
            settings.database_url, settings.cache_poll, lambda s: secrets.unseal(s, key),
            self.sender.target,
        )  # fmt: skip
        self.cache.listeners.append(self.metrics.cache_loaded)
        self._stop = asyncio.Event()
        self._fatal: BaseException | None = None
        self.broker = Broker(
            settings.amqp_url, settings.exchange, settings.retry_delays, settings.prefetch,
            quorum_size=settings.quorum_group_size, wait_format=settings.wait_format,
            on_fatal=self._on_fatal,
        )  # fmt: skip
        self.settler = Settler(self.broker, self.metrics, on_fatal=self._on_fatal)
        self.pipeline = Pipeline(settings, self.settler, self.cache, self.sender, self.metrics)
        admission = self.pipeline.admission
        self.cache.listeners.append(lambda snapshot, _took: admission.forget(set(snapshot.schemas)))
        self.consuming = False
        self.ops = OpsServer(
            settings.metrics_port, self.metrics, self.readiness, self.broker.queue_depths,
            self.problems,
        )  # fmt: skip

    def _on_fatal(self, exc: BaseException) -> None:
        self._fatal = exc
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    @property
    def ready(self) -> bool:
        return self.consuming and self.broker.connected and self.cache.ready

    def readiness(self) -> dict[str, bool]:
        """What /readyz reports: `ready` in parts, so a person sees which one is missing."""
        return {
            "rabbitmq": self.broker.connected,
            "postgresql": self.cache.ready,
            "consuming": self.consuming,
        }

    def problems(self) -> list[str]:
        """What /readyz adds as details without being unready: one schema that cannot sign
        stops only its own deliveries, an open circuit only its schema's (`queue-hooks check`
        lists both)."""
        unsigned = list(self.cache.snapshot.unsigned().values())
        return unsigned + self.pipeline.admission.open_circuits()

    async def run(self) -> None:
        """Returns after a clean stop; raises Fatal when something unrecoverable happened."""
        cache_task: asyncio.Task[None] | None = None
        try:
            await self.ops.start()  # first: /healthz answers while we wait for the services
            if await self._until_stopped(self._migrate()):
                cache_task = asyncio.create_task(self.cache.run(), name="hook-cache")
                cache_task.add_done_callback(self._cache_ended)
            if (
                cache_task
                and await self._until_stopped(self.cache.wait_fresh())
                and await self._until_stopped(self.broker.connect())
            ):
                await self.broker.consume(
                    self.pipeline.on_event, self.pipeline.on_retry, self.settler.message_now
                )
                self.consuming = True
                log.info("worker consuming", prefetch=self.settings.prefetch)
                await self._stop.wait()
        finally:
            await self._shutdown(cache_task)
        if self._fatal is not None:
            raise Fatal(str(self._fatal)) from self._fatal

    async def _migrate(self) -> None:
        conn = await wait_for_database(self.settings.database_url)
        try:
            await ensure_migrated(conn)  # a fresh database works without a separate step
        finally:
            await conn.close()

    async def _until_stopped(self, work: Awaitable[None]) -> bool:
        """Run `work` unless a stop comes first. True when it finished."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False
        task.result()  # re-raise what it raised
        return True

    def _cache_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._on_fatal(task.exception())  # type: ignore[arg-type]

    async def _shutdown(self, cache_task: asyncio.Task[None] | None) -> None:
        self.consuming = False
        await self.broker.stop_consuming()
        handed_back = await self.broker.drain(self.settings.shutdown_grace)
        if cache_task is not None:
            cache_task.cancel()
            with contextlib.suppress(BaseException):
                await cache_task
        await self.broker.close()
        await self.sender.aclose()
        await self.ops.stop()
        log.info("worker stopped", handed_back=handed_back)


def tune_gc() -> None:
    """The cyclic collector, set for a process that keeps a thousand messages in flight.

    With the defaults (a collection every 700 new objects), objects of messages still in
    flight survive collections, climb the generations and are traversed again and again: with
    one receiver down (256 requests hanging, deliveries deferred) the worker spent about 11 %
    of its CPU in the collector (0.74 s of a 6.5 s run; `make bench`, one_down). Objects from
    start-up (modules, classes) are moved out of its way, and it runs 14 times less often;
    most garbage here is freed by reference counting anyway. Measured: one receiver down
    0.60-0.64 -> 0.70-0.74; end to end unchanged. Issue 13 raised it again (10,000, 10, 10 ->
    50,000, 20, 20): deliveries put off wait for their batch's confirm with their objects
    alive, and a dead receiver's event cost 119-120 us of the worker's CPU against 108-112
    after (docs/receivers.md, two runs each); a hookless event 50-54 either way.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def serve(settings: Settings) -> None:
    tune_gc()
    worker = Worker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run()
