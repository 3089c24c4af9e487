"""A tripwire: the aiormq internals that the gathered acks (worker/broker/acks.py) write
through. aiormq has no call for several acks in one write, so `Acker._flush` does what aiormq's
own `basic_ack` does for one: `ChannelFrame.marshall(...)` put on the connection's
`write_queue`, which one writer task drains in order (docs/reliability.md, "Gathered acks").
If an upgrade of aiormq changes any of this, these fail: re-read acks.py against the new
aiormq before changing the pin in requirements.lock.
"""

from __future__ import annotations

import asyncio
import inspect

import aiormq
import pytest
from aiormq.abc import ChannelFrame
from pamqp import commands as amqp
from pamqp import frame

pytestmark = pytest.mark.usefixtures("no_task_left")  # tests/unit/conftest.py


def test_channel_frame_marshall_takes_what_acks_passes() -> None:
    params = list(inspect.signature(ChannelFrame.marshall).parameters)
    assert params == ["channel_number", "frames", "drain_future"]


def test_basic_ack_itself_writes_a_marshalled_frame_on_the_write_queue() -> None:
    send = inspect.getsource(aiormq.Channel)
    ack = inspect.getsource(aiormq.Channel.basic_ack)
    assert "__send_and_drain" in ack
    assert "self.write_queue.put(" in send and "ChannelFrame.marshall(" in send


async def test_the_frames_of_one_write_are_one_payload_in_order() -> None:
    connection = aiormq.Connection("amqp://guest:guest@127.0.0.1:1/")  # never connected
    connection.connection_tune = amqp.Connection.Tune(frame_max=131072)  # as the broker's tune
    channel = aiormq.Channel(connection, number=3, publisher_confirms=False)
    assert channel.connection is connection and channel.number == 3
    assert channel.write_queue is connection.write_queue
    assert isinstance(connection.write_queue, asyncio.Queue)
    assert not channel.is_closed
    written = channel.create_future()
    frames = [amqp.Basic.Ack(5, multiple=True), amqp.Basic.Ack(7, multiple=False)]
    payload = ChannelFrame.marshall(channel.number, frames, written)
    assert payload.drain_future is written
    connection.write_queue.put_nowait(payload)
    assert connection.write_queue.get_nowait() is payload  # FIFO: written as queued
    data, read = payload.payload, []
    while data:
        size, number, got = frame.unmarshal(data)
        read.append((number, got.delivery_tag, got.multiple))  # type: ignore[union-attr]
        data = data[size:]
    assert read == [(3, 5, True), (3, 7, False)]


def test_the_write_queue_is_bounded_as_acks_py_assumes() -> None:
    # acks.py queues with put_nowait from a timer callback: a full queue would raise there.
    # aiormq bounds it by FRAME_BUFFER_SIZE; know the figure when the version moves.
    assert aiormq.Connection.FRAME_BUFFER_SIZE == 10


async def test_a_full_write_queue_delays_the_acks_and_loses_none() -> None:
    from worker.broker.acks import FLUSH_EVERY, Acker

    connection = aiormq.Connection("amqp://guest:guest@127.0.0.1:1/")  # never connected
    connection.connection_tune = amqp.Connection.Tune(frame_max=131072)
    channel = aiormq.Channel(connection, number=3, publisher_confirms=False)
    queue = connection.write_queue
    fillers = [object() for _ in range(aiormq.Connection.FRAME_BUFFER_SIZE)]
    for filler in fillers:
        queue.put_nowait(filler)
    acker = Acker(channel)
    for tag in (1, 2, 3):
        acker.plan.deliver(tag)
        acker.ack(tag)
    await asyncio.sleep(FLUSH_EVERY * 4)  # several flushes found the writer behind
    assert queue.full() and acker.plan.done == [1, 2, 3]  # nothing raised, nothing taken
    for _ in fillers:
        queue.get_nowait()  # the writer catches up (there is none here: no written future ends)
    for _ in range(200):
        if not queue.empty():
            break
        await asyncio.sleep(FLUSH_EVERY)  # the next flush
    (payload,) = [queue.get_nowait() for _ in range(queue.qsize())]
    _size, number, got = frame.unmarshal(payload.payload)
    assert (number, got.delivery_tag, got.multiple) == (3, 3, True)  # type: ignore[union-attr]
