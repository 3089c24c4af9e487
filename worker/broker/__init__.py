"""All AMQP: connecting, the topology, consuming, confirmed publishing, ack and nack.

The pipeline never sees an AMQP object: it gets a `codec.Inbound` and returns or raises;
worker/settle.py turns that into ack, requeue or a stop, through the `ack` and `nack` given it
here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import aiormq
import aiormq.exceptions
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aiormq.abc import DeliveredMessage
from pamqp import commands as amqp

from worker import codec
from worker.abc import Handler
from worker.backoff import delays
from worker.broker import consumers
from worker.broker.acks import Acker
from worker.broker.batch import WaitPublisher
from worker.broker.nodes import Nodes
from worker.broker.topology import (
    BINDING_KEY,
    DEAD_QUEUE,
    EVENTS_QUEUE,
    RETRY_QUEUE,
    WAIT_PREFIX,
    QueueSpec,
    declarations,
    queue_specs,
    wait_queue,
)
from worker.codec import Inbound
from worker.errors import Fatal, Permanent, Refused, one_line
from worker.urls import amqp_nodes, scrub

log = structlog.get_logger("queue_hooks.broker")

Headers = dict[str, Any]
# The longest a publish may take, its confirm included: a backstop, so that no message stays
# unsettled for ever behind a publish its connection took down with it. A quorum queue
# confirms within a leader election (seconds); past this the publish fails as transient and
# its message is handed back (worker/settle.py).
PUBLISH_TIMEOUT = 60.0
# Runs a message's handler on its deliveries and settles it: worker/settle.Settler.message_now.
# None when that is done already (synchronously), otherwise what is left to await.
Settle = Callable[
    [Handler, list[Inbound], Callable[[], None], Callable[[], Awaitable[None]]],
    Awaitable[None] | None,
]


def _settle_nothing(*_args: object) -> Awaitable[None] | None:
    raise RuntimeError("Broker.consume was not called")


def _stop_loudly(exc: BaseException) -> None:
    raise exc


@dataclass(repr=False)
class Broker:
    url: str
    exchange: str
    delays: tuple[float, ...]
    prefetch: int
    quorum_size: int | None = None  # x-quorum-initial-group-size of new quorum queues
    wait_format: int = 2  # how wait batches are written (codec.pack); both are read
    # Called when a failover meets what no other node can mend (a queue declared with other
    # arguments): the worker stops with it (worker/app.py).
    on_fatal: Callable[[BaseException], None] = _stop_loudly
    _settle: Settle = _settle_nothing
    _conn: AbstractRobustConnection | None = None
    _consume: AbstractRobustChannel | None = None
    _publish: AbstractRobustChannel | None = None
    _handlers: dict[str, Handler] = field(default_factory=dict)  # queue name -> its handler
    _consumers: list[tuple[aiormq.abc.AbstractChannel, str]] = field(default_factory=list)
    _declared: dict[str, AbstractQueue] = field(default_factory=dict)
    # Messages being handled: their tasks, and the futures of those under way without one.
    in_flight: set[asyncio.Future[Any]] = field(default_factory=set)
    _background: set[asyncio.Future[Any]] = field(default_factory=set)
    _ackers: dict[int, Acker] = field(default_factory=dict)  # id(channel) -> its acker
    _closing: bool = False
    _waits: WaitPublisher = field(init=False)
    _nodes: Nodes = field(init=False)
    _failover: asyncio.Task[None] | None = None
    _renewing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self._waits = WaitPublisher(self._publish_wait_now, self.wait_format)
        self._nodes = Nodes(amqp_nodes(self.url))

    def __repr__(self) -> str:
        # Never the URL's password (issue 12, defect 4): where it connects, and no more.
        return f"Broker({self._nodes!r}, exchange={self.exchange!r})"

    async def connect(self, *, attempts: int | None = None) -> None:
        """To the first node that answers; its channels and our topology on it."""
        conn = await self._nodes.robust(attempts=attempts)
        try:
            self._publish = await conn.channel(publisher_confirms=True, on_return_raises=True)
            self._consume = await conn.channel()
            await self._consume.set_qos(prefetch_count=self.prefetch)
            self._consume.reopen_callbacks.add(self._on_reopen)
            self._conn = conn
            await self.declare()
        except BaseException:
            await _close_quietly(conn)
            raise
        conn.close_callbacks.add(self._on_close)

    # -- failover: the connection is lost, another node (or the same, back) takes over -------
    # The NodeConnection never reconnects by itself, so this is the one way back: walk the
    # nodes (worker/broker/nodes.py), declare the topology on the node reached, and consume
    # again. The messages unacked on the lost connection are the broker's again (redelivered,
    # to us or another worker); their acks on the old channel fail and are let go (_settled).
    def _on_close(self, conn: object, exc: BaseException | None) -> None:
        if self._closing or conn is not self._conn or self._failover is not None:
            return
        error = "closed" if exc is None else one_line(exc)
        log.warning(
            "broker connection lost, trying the nodes", node=self._nodes.node,
            error=scrub(error, *self._nodes.urls),
        )  # fmt: skip
        self._failover = asyncio.ensure_future(self._fail_over())

    async def _fail_over(self) -> None:
        try:
            old, self._conn = self._conn, None
            if old is not None:
                await _close_quietly(old)
            waits = delays()
            while not self._closing:
                try:
                    await self.connect()
                    if self._handlers:
                        await self._start_consumers()
                    log.info(
                        "broker reconnected", node=self._nodes.node, consumers=len(self._handlers)
                    )
                    return
                except Exception as exc:  # a node that answered and then failed: walk on
                    if isinstance(exc, Fatal):
                        raise
                    log.warning(
                        "broker node failed while restoring, trying the next",
                        node=self._nodes.node, error=scrub(one_line(exc), *self._nodes.urls),
                    )  # fmt: skip
                    await asyncio.sleep(next(waits))
        except Exception as exc:
            log.error("broker failover failed", error=one_line(exc))
            self.on_fatal(exc)
        finally:
            self._failover = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed and self._conn.connected.is_set()

    async def declare(self) -> None:
        """Idempotent, so the platform and the worker may start in either order."""
        channel = self._channel(self._consume)
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for spec in await self._check_arguments():
            queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            self._declared[spec.name] = queue
            if spec.name == EVENTS_QUEUE:
                await queue.bind(exchange, BINDING_KEY)

    async def _check_arguments(self) -> list[QueueSpec]:
        """Declares each queue on a throwaway channel first: a queue that exists with other
        arguments (an older version's) would otherwise close the channel we consume on.
        Returns the queues as the broker takes them: a quorum queue that exists keeps the
        replication group size it was created with (topology.declarations).

        Wait queues are ours alone and hold nothing for long: an empty one is replaced. Any
        other mismatch stops the worker with what to do, rather than looping on reconnects.
        """
        assert self._conn is not None
        taken = []
        for spec in queue_specs(self.delays, self.quorum_size):
            if spec.name == DEAD_QUEUE and not await self._dead_queue_reachable():
                continue
            for arguments in declarations(spec):
                if await self._declares(spec.name, arguments):
                    taken.append(QueueSpec(spec.name, arguments))
                    break
            else:
                if spec.name.startswith(WAIT_PREFIX) and await self._delete_if_empty(spec.name):
                    log.warning(
                        "replaced a wait queue declared with other arguments", queue=spec.name
                    )
                    taken.append(spec)
                    continue
                raise Fatal(
                    f"queue {spec.name} exists with other arguments than this version declares "
                    f"({spec.arguments}); move its messages elsewhere and delete it"
                )
        return taken

    async def _dead_queue_reachable(self) -> bool:
        """The dead-letter queue is a classic queue (contract §6 and the versions before):
        on a cluster it lives on one node. While that node is down the worker still consumes
        on the others; a dead letter's publish is then returned unroutable, so its message is
        handed back and tried again later: it waits for the node, it is never dropped."""
        try:
            await self._on_throwaway(lambda ch: ch.declare_queue(DEAD_QUEUE, passive=True))
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            if "is down" not in str(exc):
                return True  # it does not exist yet: declare it
            log.warning("the dead-letter queue's node is down; dead letters wait for it")
            return False
        return True

    async def _declares(self, name: str, arguments: dict[str, Any]) -> bool:
        return await self._on_throwaway(
            lambda ch: ch.declare_queue(name, durable=True, arguments=arguments)
        )

    async def _delete_if_empty(self, name: str) -> bool:
        return await self._on_throwaway(lambda ch: ch.queue_delete(name, if_empty=True))

    async def _on_throwaway(self, action: Callable[[AbstractChannel], Awaitable[Any]]) -> bool:
        """False when the broker refuses (PRECONDITION_FAILED closes only this channel)."""
        assert self._conn is not None
        channel = await self._conn.channel(publisher_confirms=False)
        try:
            await action(channel)
        except aiormq.exceptions.ChannelPreconditionFailed:
            return False
        finally:
            if not channel.is_closed:
                await channel.close()
        return True

    # -- consuming ---------------------------------------------------------------------------
    # Consumers sit on the channel under aio-pika's (its "underlay" aiormq channel): aio-pika's
    # own consumer wraps every message in an IncomingMessage and a second task, about 20 us of
    # CPU a message (`python -m bench.amqp`). The price is restoring them ourselves: after
    # the robust channel reopens (aio-pika has re-declared our queues by then), and when the
    # broker cancels one (its queue deleted, a quorum leader moved).
    async def consume(self, on_event: Handler, on_retry: Handler, settle: Settle) -> None:
        self._channel(self._consume)  # raises when not connected
        self._handlers = {EVENTS_QUEUE: on_event, RETRY_QUEUE: on_retry}
        self._settle = settle
        await self._start_consumers()

    async def _start_consumers(self) -> None:
        raw = await self._channel(self._consume).get_underlay_channel()
        raw.on_consumer_cancel_callbacks.add(self._on_cancelled)
        self._consumers = []
        for name, handler in self._handlers.items():
            dispatch = self._dispatcher(handler, batches=name == RETRY_QUEUE)
            # aiormq makes it a coroutine function first (tools.awaitable), which takes a None.
            ok = await raw.basic_consume(name, dispatch)  # type: ignore[arg-type]
            assert ok.consumer_tag is not None
            consumers.register(raw, ok.consumer_tag, dispatch)  # no task when none is needed
            self._consumers.append((raw, ok.consumer_tag))

    async def _on_reopen(self, *_args: object) -> None:
        if not self._handlers:
            return
        try:
            await self._start_consumers()
        except Exception as exc:  # aio-pika drops a callback's error silently: say it
            log.warning(
                "could not restore consumers; waiting for the next reopen", error=one_line(exc)
            )
        else:
            log.info("consumers restored")

    def _on_cancelled(self, frame: amqp.Basic.Cancel) -> None:
        """The broker dropped a consumer: close the channel, so the robust channel reopens it,
        declares our queues again and `_on_reopen` consumes afresh."""
        if self._consume is None or not self._handlers:
            return
        log.warning("broker cancelled a consumer; reopening the channel", tag=frame.consumer_tag)
        task = asyncio.ensure_future(self._reopen_consuming())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reopen_consuming(self) -> None:
        try:
            raw = await self._channel(self._consume).get_underlay_channel()
            await raw.close()  # the robust channel sees an unexpected close and restores
        except Exception as exc:
            log.warning("could not reopen the consuming channel", error=one_line(exc))

    async def stop_consuming(self) -> None:
        self._handlers = {}
        consumers, self._consumers = self._consumers, []
        for raw, tag in consumers:
            if raw.is_closed:
                continue  # the connection is gone already: nothing to cancel
            try:
                await raw.basic_cancel(tag)
            except Exception as exc:
                log.warning("could not cancel consumer", tag=tag, error=one_line(exc))

    async def drain(self, grace: float) -> int:
        """Wait up to `grace` for in-flight messages; hand back the rest. Returns that count."""
        pending = set(self.in_flight)
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=grace)
        # A task is cancelled into its nack. A put-off's future cancelled leaves its message
        # unacked (unless its wait is confirmed before the connection closes): the broker has
        # it back with the connection, as with a nack.
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        for acker in list(self._ackers.values()):  # acks go out before the connection closes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acker.sent(), 5)
        return len(pending)

    async def close(self) -> None:
        self._closing = True
        if self._failover is not None:
            self._failover.cancel()
            with contextlib.suppress(BaseException):
                await self._failover
        if self._conn is not None:
            await self._conn.close()

    # -- publishing, always confirmed -------------------------------------------------------
    def publish_wait(
        self, body: bytes, headers: Headers, tier_delay: float, wait: float
    ) -> asyncio.Future[None]:
        """Done once the broker holds it, maybe together with others (`batch`)."""
        return self._waits.put(body, headers, tier_delay, wait)

    async def _publish_wait_now(
        self, body: bytes, headers: Headers, content_type: str, tier_delay: float, wait: float
    ) -> None:
        await self._publish_to(
            wait_queue(tier_delay), body, headers, content_type,
            expiration=max(1, round(wait * 1000)) / 1000,
        )  # fmt: skip

    async def publish_dead(self, body: bytes, headers: Headers, content_type: str | None) -> None:
        # The timestamp is when it died: `dlq list` shows the age from it.
        await self._publish_to(DEAD_QUEUE, body, headers, content_type, timestamp=datetime.now(UTC))

    async def publish_event(self, routing_key: str, body: bytes) -> None:
        channel = self._channel(self._publish)
        exchange = await channel.get_exchange(self.exchange, ensure=False)
        message = aio_pika.Message(
            body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await exchange.publish(
            message, routing_key=routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT
        )

    async def _publish_to(
        self,
        queue: str,
        body: bytes,
        headers: Headers,
        content_type: str | None,
        expiration: float | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        """Published, then confirmed by the broker: only then may the caller ack its message.

        On the channel under aio-pika's, as consuming is: aio-pika's Message and Exchange cost
        about 20 us a publish (`python -m bench.amqp`), and a receiver that is down has
        every delivery of its share deferred, so published.
        """
        properties = amqp.Basic.Properties(
            content_type=content_type,
            headers=headers,
            delivery_mode=2,  # persistent
            expiration=None if expiration is None else str(round(expiration * 1000)),
            timestamp=timestamp,
        )
        channel = self._channel(self._publish)
        raw = await channel.get_underlay_channel()
        try:
            confirmation = await raw.basic_publish(
                body, routing_key=queue, properties=properties, mandatory=True,
                timeout=PUBLISH_TIMEOUT,
            )  # fmt: skip
        except aiormq.exceptions.DeliveryError as exc:
            if not isinstance(exc.frame, amqp.Basic.Nack):
                raise  # returned unroutable (PublishError): no queue to wait for
            confirmation = exc.frame
        if not isinstance(confirmation, amqp.Basic.Ack):  # nacked: the broker did not take it
            await self._renew_publisher(channel)
            raise Refused(f"the broker refused the publish to {queue} (basic.nack)")

    async def _renew_publisher(self, refused: AbstractRobustChannel) -> None:
        """The next publishes go on a new channel. RabbitMQ 3.10's channel learns a quorum
        queue's servers once, at its first publish to it, the leader its record names first;
        when that leader's node is dead then, the channel refuses that publish and every later
        one to the queue, asking the dead node each time (rabbit_fifo_client:enqueue/3). Seen
        in `make chaos`: a worker's first publish after a failover, to the wait queue whose
        leader had just been killed, refused for as long as the case ran. A new channel
        learns the servers afresh. The refused one is closed once its other publishes are
        confirmed (within PUBLISH_TIMEOUT), so none of them fails for it."""
        async with self._renewing:
            if self._publish is not refused or not self.connected:
                return  # renewed already, or a failover makes new channels anyway
            assert self._conn is not None
            self._publish = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        log.debug("publishing on a new channel after a refusal")
        closing = asyncio.ensure_future(_close_when_confirmed(refused))
        self._background.add(closing)
        closing.add_done_callback(self._background.discard)

    # -- for the metrics ------------------------------------------------------------------------
    async def queue_depths(self) -> dict[str, int]:
        """Messages ready in each of our queues. Passive declares, on a channel of their own:
        a queue someone deleted closes the channel it was asked on, never the worker's."""
        if self._conn is None or not self.connected:
            raise ConnectionError("not connected to the broker")
        channel = await self._conn.channel()
        try:
            depths = {}
            for spec in queue_specs(self.delays):
                queue = await channel.declare_queue(spec.name, passive=True)
                depths[spec.name] = int(queue.declaration_result.message_count or 0)
            return depths
        finally:
            if not channel.is_closed:
                await channel.close()

    def _channel(self, channel: AbstractRobustChannel | None) -> AbstractRobustChannel:
        """One of our channels, only while its connection is up. A robust channel of a lost
        connection waits for that connection to come back, and ours never does (the failover
        makes a new one): a publish made in between would wait for ever, its events unacked
        and every later batch of its wait queue behind it (batch.py). It fails now instead,
        and the broker redelivers what the lost connection held."""
        if channel is None or not self.connected:
            raise ConnectionError("not connected to the broker")
        return channel

    # -- handing each message to the settling ---------------------------------------------------
    def _dispatcher(
        self, handler: Handler, batches: bool
    ) -> Callable[[DeliveredMessage], Coroutine[Any, Any, None] | None]:
        """A message settled synchronously (an event no hook wants) returns None: no task is
        made for it (worker/broker/consumers.py), and its ack is planned already. A future
        (each delivery of an event put off, waiting for its wait batch's confirm) settles the
        message itself when done: it needs no task either, and `drain` waits for it. Whatever
        else is left to await runs in a task that `drain` waits for."""

        def dispatch(message: DeliveredMessage) -> Coroutine[Any, Any, None] | None:
            work = self._dispatch(message, handler, batches)
            if work is None:
                return None
            if isinstance(work, asyncio.Future):  # under way already (a put-off): no task
                self.in_flight.add(work)
                work.add_done_callback(self.in_flight.discard)
                return None
            return self._in_flight(work)

        return dispatch

    async def _in_flight(self, work: Awaitable[None]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        try:
            await work
        finally:
            if task is not None:
                self.in_flight.discard(task)

    def _acker(self, message: DeliveredMessage) -> Acker:
        """Acks go on the channel the message came by: after a reconnect that one is closed,
        and the broker has requeued the message already."""
        channel = message.channel
        acker = self._ackers.get(id(channel))
        if acker is None or acker.channel is not channel:
            self._ackers = {k: a for k, a in self._ackers.items() if not a.channel.is_closed}
            acker = self._ackers[id(channel)] = Acker(channel)
        return acker

    def _dispatch(
        self, message: DeliveredMessage, handler: Handler, batches: bool
    ) -> Awaitable[None] | None:
        tag = message.delivery_tag or 0
        acker = self._acker(message)
        acker.plan.deliver(tag)
        properties = message.header.properties
        headers = dict(properties.headers or {})
        args = (message.body, headers, properties.content_type, properties.timestamp,
                bool(message.redelivered), message.routing_key or "")  # fmt: skip
        try:
            inbounds = codec.inbounds(*args, batches=batches)
        except ValueError as exc:  # a batch that does not hold together: not one of ours
            handler, inbounds = self._refuse(one_line(exc)), codec.inbounds(*args, batches=False)
        return self._settle(
            handler, inbounds, lambda: acker.ack(tag), lambda: _settled(acker.nack(tag))
        )

    @staticmethod
    def _refuse(error: str) -> Handler:
        async def refuse(_inbound: Inbound) -> None:
            raise Permanent(error)

        return refuse


async def _close_when_confirmed(channel: AbstractRobustChannel) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(PUBLISH_TIMEOUT):
            raw = await channel.get_underlay_channel()
            while isinstance(raw, aiormq.Channel) and raw.confirmations:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    with contextlib.suppress(Exception):
        await channel.close()


async def _close_quietly(conn: AbstractRobustConnection) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(conn.close(), 5)


def safe_url(url: str) -> str:
    """A URL without its password, for a repr or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def _settled(action: Awaitable[Any]) -> None:
    """Ack or nack; on a closed channel the broker has requeued the message already."""
    try:
        await action
    except Exception as exc:
        log.warning("could not settle message; the broker will redeliver it", error=one_line(exc))


__all__ = [
    "DEAD_QUEUE", "EVENTS_QUEUE", "RETRY_QUEUE", "Broker", "Inbound", "safe_url",
]  # fmt: skip
