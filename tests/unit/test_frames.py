"""The bulk frame receiver (worker/broker/frames.py) against aiormq's own, on the same bytes.

Two kinds of check. A tripwire: the aiormq internals it plugs into (the module name
`FrameReceiver` that `Connection.connect` builds its receiver by, the receiver's interface
the connection's reader iterates). If an upgrade of aiormq moves any of it, these fail: re-read
frames.py against the new aiormq before changing the pin in requirements.lock. And behaviour:
whatever aiormq's receiver makes of a byte stream (frames, a stream cut short, a reset, a
broker that speaks another protocol), the bulk one makes the same.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from typing import cast

import aiormq
import aiormq.connection
import pamqp.frame
import pytest
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError, ProtocolSyntaxError
from pamqp import commands as amqp
from pamqp.base import Frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader, ProtocolHeader
from pamqp.heartbeat import Heartbeat

from worker.broker import frames
from worker.broker.frames import BulkFrameReceiver

# aiormq's own receiver: install() replaced the module's name, the class is still there.
ORIGINAL = cast(type[aiormq.connection.FrameReceiver], BulkFrameReceiver.__bases__[0])
frames.install()  # as the worker does before it connects

RECEIVERS: list[type[aiormq.connection.FrameReceiver]] = [ORIGINAL, BulkFrameReceiver]
FRAME_MAX = 131072  # RabbitMQ's default: a larger body comes in several body frames


def test_aiormq_builds_its_receiver_by_the_module_name_install_replaces() -> None:
    connect = inspect.unwrap(aiormq.Connection.connect)
    assert "FrameReceiver" in connect.__code__.co_names
    assert connect.__globals__ is vars(aiormq.connection)
    assert aiormq.connection.FrameReceiver is BulkFrameReceiver
    assert ORIGINAL.__module__ == "aiormq.connection" and ORIGINAL.__name__ == "FrameReceiver"
    frames.install()  # twice is harmless
    assert aiormq.connection.FrameReceiver is BulkFrameReceiver


def test_the_connection_reads_frames_through_the_interface_overridden() -> None:
    assert list(inspect.signature(ORIGINAL).parameters) == ["reader"]
    assert "return await self.get_frame()" in inspect.getsource(ORIGINAL.__anext__)
    source = inspect.getsource(aiormq.Connection)
    assert "frame_receiver = FrameReceiver(reader)" in source
    assert "async for weight, channel, frame in frame_receiver:" in source  # the reader task
    assert "await frame_receiver.get_frame()" in source  # the handshake
    receiver = ORIGINAL(asyncio.StreamReader())
    assert receiver.started is False  # both check the protocol header on the first frame only


def stream() -> tuple[bytes, list[tuple[int, object]]]:
    """A consumer's bytes: deliveries (one with a body of several frames), a heartbeat, a
    close of channel 2. With what each frame must come out as."""
    sent: list[tuple[int, object]] = []
    data = b""

    def add(channel: int, value: pamqp.frame.FrameTypes) -> None:
        nonlocal data
        data += pamqp.frame.marshal(value, channel)
        sent.append((channel, value))

    for tag, size in enumerate((300, 0, 3 * FRAME_MAX + 17, 1), start=1):
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        add(1, amqp.Basic.Deliver("ctag", tag, False, "ex", "queue.1.joined"))
        props = amqp.Basic.Properties(content_type="application/json", headers={"n": tag})
        add(1, ContentHeader(0, len(body), props))
        for start in range(0, len(body), FRAME_MAX - 8):
            add(1, ContentBody(body[start : start + FRAME_MAX - 8]))
    add(0, Heartbeat())
    add(2, amqp.Channel.Close(404, "NOT_FOUND - no queue", 50, 10))
    return data, sent


def same(got: pamqp.frame.FrameTypes, want: object) -> bool:
    if isinstance(got, ContentBody):
        return isinstance(want, ContentBody) and got.value == want.value
    if isinstance(got, ContentHeader):
        assert isinstance(want, ContentHeader)
        return (got.body_size, dict(got.properties)) == (want.body_size, dict(want.properties))
    if isinstance(got, Heartbeat):
        return isinstance(want, Heartbeat)
    assert isinstance(got, Frame) and isinstance(want, Frame)
    return type(got) is type(want) and dict(got) == dict(want)


Received = list[tuple[int, int, pamqp.frame.FrameTypes]]


async def receive(
    kind: type[aiormq.connection.FrameReceiver], chunks: Sequence[bytes]
) -> tuple[Received, BaseException | None]:
    """What the receiver hands out while the bytes come in `chunks` (the receiver may run
    between two of them), and the error it stops with once they have ended."""
    reader = asyncio.StreamReader()
    receiver = kind(reader)

    async def feed() -> None:
        for chunk in chunks:
            reader.feed_data(chunk)
            await asyncio.sleep(0)
        reader.feed_eof()

    feeding = asyncio.ensure_future(feed())
    got = []
    try:
        async for received in receiver:
            got.append(received)
    except Exception as exc:
        return got, exc
    finally:
        await feeding
    return got, None


async def received_whole(
    kind: type[aiormq.connection.FrameReceiver], data: bytes
) -> tuple[Received, BaseException | None]:
    """The same on a stream that had ended before the receiver started."""
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    got = []
    try:
        async for received in kind(reader):
            got.append(received)
    except Exception as exc:
        return got, exc
    return got, None


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("cut", [1, 7, 100, 4096, 65536, 1 << 20], ids=lambda n: f"by {n}")
async def test_both_cut_a_stream_into_the_same_frames_however_it_arrives(cut: int) -> None:
    data, sent = stream()
    for kind in RECEIVERS:
        got, error = await receive(kind, pieces(data, cut))
        assert len(got) == len(sent), kind
        for (weight, channel, frame), (want_channel, want) in zip(got, sent, strict=True):
            assert channel == want_channel and same(frame, want), (kind, frame, want)
            assert weight == len(pamqp.frame.marshal(want, channel))  # type: ignore[arg-type]
        # The stream ended while a next frame was awaited: a lost connection to both.
        assert isinstance(error, AMQPConnectionError), (kind, error)
        assert "unexpectedly closed" in str(error)


def boundaries() -> list[int]:
    """Where each frame of `stream()` ends."""
    ends, at = [], 0
    for channel, value in stream()[1]:
        at += len(pamqp.frame.marshal(value, channel))  # type: ignore[arg-type]
        ends.append(at)
    return ends


@pytest.mark.parametrize(
    ("cut", "lost"),
    [
        (lambda ends: ends[1], False),  # between two frames: the stream simply ended
        (lambda ends: ends[1] + 3, True),  # in a frame's header
        (lambda ends: ends[1] + 12, True),  # in its payload
        (lambda ends: ends[2] - 1, True),  # before its frame-end octet
    ],
    ids=["between frames", "in a header", "in a payload", "before the frame end"],
)
async def test_a_stream_that_ends_stops_both_the_same_way(
    cut: Callable[[list[int]], int], lost: bool
) -> None:
    data = stream()[0][: cut(boundaries())]
    for kind in RECEIVERS:
        got, error = await received_whole(kind, data)
        assert len(got) == 2, kind
        if lost:
            assert isinstance(error, AMQPConnectionError), (kind, error)
            assert "unexpectedly closed" in str(error)
        else:
            assert error is None, (kind, error)  # the iteration stopped


async def test_a_stream_that_ends_while_a_frame_is_awaited_is_a_lost_connection() -> None:
    for kind in RECEIVERS:
        got, error = await receive(kind, [])
        assert got == [] and isinstance(error, AMQPConnectionError), (kind, error)


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (ConnectionResetError(104, "reset by peer"), "Server connection reset"),
        (ConnectionRefusedError(111, "refused"), "Server connection refused"),
        (BrokenPipeError(32, "broken pipe"), "Server connection error"),
        (OSError(113, "no route"), "Server communication error"),
    ],
)
async def test_a_socket_error_becomes_the_same_amqp_error(error: OSError, says: str) -> None:
    for kind in RECEIVERS:
        reader = asyncio.StreamReader()
        reader.set_exception(error)
        with pytest.raises(AMQPConnectionError, match=says):
            await kind(reader).get_frame()


async def test_a_broker_that_answers_with_another_protocol_is_refused_by_both() -> None:
    for kind in RECEIVERS:
        _got, error = await receive(kind, [ProtocolHeader().marshal()])
        assert isinstance(error, ProtocolSyntaxError), kind


def corrupt_end(data: bytes) -> bytes:
    size = boundaries()[0]
    return data[: size - 1] + b"\x00" + data[size:]


def corrupt_method(data: bytes) -> bytes:
    return data[:7] + b"\xff\xff\xff\xff" + data[11:]  # no such class and method


@pytest.mark.parametrize("corrupt", [corrupt_end, corrupt_method], ids=["frame end", "method"])
async def test_a_malformed_frame_is_an_invalid_frame_to_both(
    corrupt: Callable[[bytes], bytes],
) -> None:
    data, _sent = stream()
    for kind in RECEIVERS:
        got, error = await receive(kind, [corrupt(data)])
        assert got == [] and isinstance(error, InvalidFrameError), (kind, error)
