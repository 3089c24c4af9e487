"""The channel that makes a task only for a consumer that returns one (worker/broker/consumers.py).

A tripwire first: the aiormq internals it replaces and plugs into (the module name `Channel`
that `Connection.channel` builds its channels by, `_on_deliver_frame` as the channel's reader
calls it, what `basic_consume` keeps for a consumer). If an upgrade of aiormq moves any of it,
these fail: re-read consumers.py against the new aiormq before changing the pin in
requirements.lock. Then behaviour, on a channel fed frames as its connection would feed them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from typing import Any, cast

import aiormq
import aiormq.channel
import aiormq.connection
import pytest
from aiormq.abc import DeliveredMessage
from pamqp import commands as amqp
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from worker.broker import consumers
from worker.broker.consumers import SyncFirstChannel

ORIGINAL = aiormq.channel.Channel


pytestmark = pytest.mark.usefixtures("no_task_left")  # tests/unit/conftest.py


def test_aiormq_builds_its_channels_by_the_module_name_install_replaces() -> None:
    channel = inspect.unwrap(aiormq.Connection.channel)
    assert "Channel" in channel.__code__.co_names
    assert channel.__globals__ is vars(aiormq.connection)
    assert "channel = Channel(" in inspect.getsource(channel)
    consumers.install()
    consumers.install()  # twice is harmless
    assert vars(aiormq.connection)["Channel"] is SyncFirstChannel
    assert SyncFirstChannel.__bases__ == (ORIGINAL,)


def test_the_method_replaced_is_the_one_the_reader_calls_and_still_as_copied() -> None:
    reader = inspect.getsource(ORIGINAL._reader)
    assert "await self._on_deliver_frame(frame)" in reader
    own = inspect.getsource(ORIGINAL._on_deliver_frame)
    for line in (
        "header: ContentHeader = await self.__get_content_header()",
        "message = await self._read_content(frame, header)",
        "consumer = self.consumers.get(frame.consumer_tag)",
        "task = self.create_task(consumer(message))",
        "task.add_done_callback(self._on_consumer_done)",
    ):
        assert line in own, line
    assert callable(ORIGINAL._Channel__get_content_header)  # type: ignore[attr-defined]
    assert list(inspect.signature(ORIGINAL._read_content).parameters) == [
        "self", "frame", "header",
    ]  # fmt: skip


def test_basic_consume_keeps_a_coroutine_wrapper_under_the_tag_register_replaces() -> None:
    source = inspect.getsource(ORIGINAL.basic_consume)
    assert "self.consumers[consumer_tag] = awaitable(consumer_callback)" in source
    wrapped = aiormq.tools.awaitable(lambda message: None)
    assert inspect.iscoroutinefunction(wrapped)  # so it always makes a task without us


def channel() -> SyncFirstChannel:
    connection = aiormq.Connection("amqp://guest:guest@127.0.0.1:1/")  # never connected
    connection.connection_tune = amqp.Connection.Tune(frame_max=131072)
    return SyncFirstChannel(connection, number=1, publisher_confirms=False)


def deliver(ch: SyncFirstChannel, tag: int, body: bytes, consumer_tag: str = "ctag") -> None:
    """The three frames of a message, as the connection's reader hands them to the channel."""
    ch.frames.put_nowait((0, amqp.Basic.Deliver(consumer_tag, tag, False, "ex", "queue.1.joined")))
    ch.frames.put_nowait((0, ContentHeader(0, len(body), amqp.Basic.Properties())))
    ch.frames.put_nowait((0, ContentBody(body)))


async def drained(ch: SyncFirstChannel) -> None:
    while not ch.frames.empty():  # noqa: ASYNC110 - the reader task takes them on its turns
        await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_consumer_that_returns_none_gets_no_task() -> None:
    ch = channel()
    seen: list[tuple[int, bytes]] = []

    def settled_at_once(message: DeliveredMessage) -> None:
        seen.append((message.delivery_tag or 0, message.body))

    consumers.register(ch, "ctag", settled_at_once)
    made: list[object] = []
    create_task = ch.create_task

    def counting(coro: Any) -> Any:
        made.append(coro)
        return create_task(coro)

    ch.create_task = counting  # type: ignore[method-assign]
    for tag in (1, 2, 3):
        deliver(ch, tag, b"event %d" % tag)
    await drained(ch)
    assert seen == [(1, b"event 1"), (2, b"event 2"), (3, b"event 3")]
    assert made == []


async def test_a_consumer_that_returns_a_coroutine_has_it_run_in_a_task() -> None:
    ch = channel()
    done: list[int] = []

    async def later(tag: int) -> None:
        await asyncio.sleep(0)
        done.append(tag)

    def half_later(message: DeliveredMessage) -> Coroutine[Any, Any, None] | None:
        tag = message.delivery_tag or 0
        return later(tag) if tag % 2 else None

    consumers.register(ch, "ctag", half_later)
    for tag in (1, 2, 3, 4):
        deliver(ch, tag, b"{}")
    await drained(ch)
    while len(done) < 2:  # noqa: ASYNC110
        await asyncio.sleep(0)
    assert sorted(done) == [1, 3]


async def test_a_consumer_wrapped_by_aiormq_runs_as_before() -> None:
    """What `basic_consume` stores (and every aio-pika consumer is): always a task."""
    ch = channel()
    seen: list[int] = []
    ch.consumers["ctag"] = aiormq.tools.awaitable(
        lambda message: seen.append(message.delivery_tag or 0)
    )
    deliver(ch, 7, b"x")
    await drained(ch)
    while not seen:  # noqa: ASYNC110
        await asyncio.sleep(0)
    assert seen == [7]


async def test_a_consumer_that_raises_is_logged_and_the_channel_reads_on() -> None:
    ch = channel()
    seen: list[int] = []

    def fussy(message: DeliveredMessage) -> None:
        if message.delivery_tag == 1:
            raise RuntimeError("boom")
        seen.append(message.delivery_tag or 0)

    consumers.register(ch, "ctag", fussy)
    deliver(ch, 1, b"a")
    deliver(ch, 2, b"b")
    deliver(ch, 3, b"c", consumer_tag="nobody")  # no consumer: dropped, as aiormq drops it
    deliver(ch, 4, b"d")
    await drained(ch)
    assert seen == [2, 4]
    assert not ch.is_closed


def test_register_leaves_other_channels_alone() -> None:
    class Other:
        consumers: dict[str, object] = {"ctag": "aiormq's"}  # noqa: RUF012

    other = Other()
    consumers.register(cast(aiormq.abc.AbstractChannel, other), "ctag", lambda m: None)
    assert other.consumers == {"ctag": "aiormq's"}
