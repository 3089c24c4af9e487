"""A consumed message gets a task only when its consumer needs one.

aiormq's `Channel._on_deliver_frame` wraps every delivered message's consumer call in a task
(`create_task(consumer(message))` and a done callback), and `basic_consume` makes any consumer
a coroutine function first. Most events of a platform have no hook: the worker settles those
synchronously (parsed, counted, their ack planned; worker/pipeline.py `Pipeline.on_event`), so
their task and coroutines were all cost (docs/receivers.md, "An event no hook wants"). Python
3.11 has no eager task factory (3.12's `asyncio.eager_task_factory` would do the same).

So this channel calls the consumer itself and makes the task only from what it returns: an
awaitable is run as aiormq would run it, None means the consumer is done with the message
already. A consumer registered through `basic_consume` is still aiormq's coroutine wrapper,
so it always returns one (aio-pika's consumers, and ours until `register` puts the plain
callable in its place): nothing changes for those.

aiormq builds its channels by the module name `Channel` inside `Connection.channel`, with no
parameter for it, so `install` puts this subclass under that name, as frames.py does for the
receiver. Checked against aiormq 7.2.4 (requirements.lock); tests/unit/test_consumers.py fails
loudly if the internals relied on here move.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import aiormq.channel
import aiormq.connection
import structlog
from aiormq.abc import DeliveredMessage
from pamqp import commands as amqp
from pamqp.header import ContentHeader

log = structlog.get_logger("queue_hooks.broker")

# None: the message was handled synchronously; otherwise what is left of its handling.
Consumer = Callable[[DeliveredMessage], Coroutine[Any, Any, Any] | None]


class SyncFirstChannel(aiormq.channel.Channel):
    async def _on_deliver_frame(self, frame: amqp.Basic.Deliver) -> None:
        # aiormq's own, up to the consumer's call (the content's frames read as it reads them).
        header: ContentHeader = await self._Channel__get_content_header()  # type: ignore[attr-defined]
        message = await self._read_content(frame, header)
        if frame.consumer_tag is None:
            log.warning("delivery without a consumer tag", frame=repr(frame))
            return
        consumer: Consumer | None = self.consumers.get(frame.consumer_tag)
        if consumer is None:
            return
        try:
            work = consumer(message)
        except Exception:  # as a failed consumer task is: logged, and the channel reads on
            log.exception("consumer callback failed")
            return
        if work is not None:
            task = self.create_task(work)
            task.add_done_callback(self._on_consumer_done)


def register(channel: aiormq.abc.AbstractChannel, consumer_tag: str, consumer: Consumer) -> None:
    """After `basic_consume(queue, consumer)`: the consumer itself in place of aiormq's
    coroutine wrapper of it, so a message it settles synchronously makes no task. What came
    before this (deliveries right after the consume-ok) went through the wrapper: the same."""
    if isinstance(channel, SyncFirstChannel):
        channel.consumers[consumer_tag] = consumer  # type: ignore[assignment]


def install() -> None:
    """Idempotent; called before each of our connections is made (worker/broker/nodes.py)."""
    aiormq.connection.Channel = SyncFirstChannel  # type: ignore[attr-defined]
