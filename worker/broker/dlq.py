"""The dead-letter queue for the ops commands: read it without taking, move out of it with care.

Reading never consumes: messages are received with manual ack on a channel of our own and never
acked, so closing that channel hands every one back to the broker at its place (the dead queue
is a classic queue, which requeues in order). Moving is a confirmed publish first and the ack of
the original second: a command killed between the two leaves a copy in both queues, never in
neither. Receivers dedupe a doubled delivery on its webhook-id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from worker import codec
from worker.broker import topology as t
from worker.broker.nodes import Nodes
from worker.urls import amqp_nodes


class NoDeadQueue(LookupError):
    """The dead-letter queue does not exist: no worker has declared it yet."""


class MoveFailed(Exception):
    """A publish was refused (e.g. no queue bound): the original stays where it was."""


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class DeadLetter:
    position: int  # 1 = the head of the queue (the oldest) when the scan began
    body: bytes
    headers: dict[str, Any]
    content_type: str | None
    dead_at: datetime | None  # when the worker dead-lettered it (the AMQP timestamp)
    _message: AbstractIncomingMessage = field(repr=False, compare=False)

    @property
    def reason(self) -> str:
        return _text(self.headers.get(t.H_REASON)) or "unknown"

    @property
    def error(self) -> str:
        return _text(self.headers.get(t.H_ERROR)) or ""

    @property
    def event_id(self) -> str | None:
        return _text(self.headers.get(t.H_EVENT_ID))

    @property
    def event(self) -> str | None:
        return _text(self.headers.get(t.H_EVENT))

    @property
    def hook_id(self) -> int | None:
        return _int(self.headers.get(t.H_HOOK_ID))

    @property
    def queue_id(self) -> int | None:
        return _int(self.headers.get(t.H_QUEUE_ID))

    @property
    def attempts(self) -> int | None:
        return _int(self.headers.get(t.H_ATTEMPTS))

    @property
    def routing_key(self) -> str | None:
        return _text(self.headers.get(t.H_ROUTING_KEY))

    def age(self, now: datetime) -> float | None:
        return None if self.dead_at is None else max(0.0, (now - self.dead_at).total_seconds())


def retry_headers(letter: DeadLetter) -> dict[str, Any]:
    """What a replayed delivery carries: the codec's rule (worker/codec.py)."""
    return codec.replay(letter.headers)


class Scan:
    """One pass over the dead queue, head first, up to the depth it had when the pass began
    (letters that die meanwhile wait for the next pass). What is not taken goes back."""

    def __init__(self, channel: AbstractChannel, publisher: AbstractChannel, exchange: str):
        self._channel = channel
        self._publisher = publisher
        self._exchange = exchange
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self.depth = 0

    async def _start(self) -> AbstractQueue:
        # Unlimited prefetch: nothing is acked until the end, and a limit would stop the pass.
        await self._channel.set_qos(prefetch_count=0)
        try:
            queue = await self._channel.declare_queue(t.DEAD_QUEUE, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            raise NoDeadQueue(
                f"there is no queue {t.DEAD_QUEUE} (has a worker ever run?)"
            ) from None
        self.depth = int(queue.declaration_result.message_count or 0)
        if self.depth:
            await queue.consume(self._inbox.put, no_ack=False)
        return queue

    async def letters(self, idle: float = 2.0) -> AsyncIterator[DeadLetter]:
        """`idle`: how long to wait for the next one, in case another client took some."""
        for position in range(1, self.depth + 1):
            try:
                message = await asyncio.wait_for(self._inbox.get(), idle)
            except TimeoutError:
                return
            yield DeadLetter(
                position=position,
                body=message.body,
                headers=dict(message.headers or {}),
                content_type=message.content_type,
                dead_at=_utc(message.timestamp),
                _message=message,
            )

    async def drop(self, letter: DeadLetter) -> None:
        await letter._message.ack()

    async def to_retry(self, letter: DeadLetter) -> None:
        message = aio_pika.Message(
            letter.body,
            headers=retry_headers(letter),
            content_type=letter.content_type or "application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._move(letter, self._publisher.default_exchange, message, t.RETRY_QUEUE)

    async def to_events(self, letter: DeadLetter, routing_key: str) -> None:
        """An invalid event goes back to where the platform sent it, byte for byte."""
        message = aio_pika.Message(
            letter.body,
            content_type=letter.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        exchange = await self._publisher.get_exchange(self._exchange, ensure=False)
        await self._move(letter, exchange, message, routing_key)

    async def _move(
        self, letter: DeadLetter, exchange: Any, message: aio_pika.Message, routing_key: str
    ) -> None:
        try:
            await exchange.publish(message, routing_key=routing_key, mandatory=True)
        except aio_pika.exceptions.DeliveryError:
            raise MoveFailed(
                f"dead letter #{letter.position} came back unroutable: no queue takes"
                f" {routing_key!r} (has a worker declared its queues?); it stays dead"
            ) from None
        await letter._message.ack()  # only now: the copy is safe with the broker


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class DeadLetterQueue:
    """One connection for one ops command. Not robust on purpose: a reconnect would hand the
    letters back mid-pass, and the command should rather stop and be run again."""

    def __init__(self, url: str, exchange: str) -> None:
        self._url = url
        self._exchange = exchange
        self._conn: AbstractConnection | None = None

    async def __aenter__(self) -> DeadLetterQueue:
        self._conn = await Nodes(amqp_nodes(self._url)).plain()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()

    @contextlib.asynccontextmanager
    async def scan(self) -> AsyncIterator[Scan]:
        assert self._conn is not None, "use `async with DeadLetterQueue(...)`"
        channel = await self._conn.channel()
        publisher = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        scan = Scan(channel, publisher, self._exchange)
        try:
            await scan._start()
            yield scan
        finally:
            # Closing without acking: the broker puts back every letter not taken, in order.
            for ch in (channel, publisher):
                if not ch.is_closed:
                    with contextlib.suppress(Exception):
                        await ch.close()
