"""Receiving AMQP frames in bulk: what the socket holds, cut into frames from one buffer.

aiormq's own `FrameReceiver.get_frame` reads each frame with an asyncio lock, a BytesIO and
three `readexactly` awaits (type, header, payload), and a message is three frames (deliver,
content header, body): about a third of a consumed message's CPU on this path (docs/
receivers.md, "An event no hook wants"). This one reads whatever the stream has buffered (up
to `READ_SIZE`) in one await, cuts every whole frame out of it and hands them out one by one;
a frame cut short waits in the buffer for the next read. Everything above (the connection's
reader, its channels, heartbeats, closes) is aiormq's own.

The three frames of a delivered message (basic.deliver, its content header, its body) are
decoded by `unmarshal` below into the same pamqp objects, with pamqp's own decoder of each
field, but without pamqp's dispatch on each field's type name at every field of every frame:
8 us of pamqp for a message's three frames, a sixth of an event no hook wants (docs/
receivers.md). Any other frame, a header with more than one word of property flags, and any
frame the fast path cannot read goes to pamqp's `unmarshal` whole, which decodes it or
raises as it always did: the fast path never decides that a frame is wrong.

aiormq builds its receiver by the module's name `FrameReceiver` inside `Connection.connect`,
with no parameter for it, so `install` puts this subclass under that name: every aiormq
connection of the process gets it (queue-hooks' are its only ones: worker/broker is the one
package that talks AMQP). Checked against aiormq 7.2.4 with pamqp 4.0.1 (requirements.lock);
tests/unit/test_frames.py fails loudly if the internals relied on here move.
"""

from __future__ import annotations

import asyncio
from collections import deque
from struct import Struct
from struct import error as StructError

import aiormq.connection
import pamqp.frame
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError, ProtocolSyntaxError
from pamqp import constants, decode
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.exceptions import PAMQPException
from pamqp.header import ContentHeader

ReceivedFrame = aiormq.connection.ReceivedFrame
READ_SIZE = 1 << 18  # a read takes what is buffered, up to this: the stream's own bound is lower
_HEADER = Struct(">BHI")  # type, channel, payload size
_OVERHEAD = _HEADER.size + 1  # the header, and the frame-end octet after the payload
_DELIVER = Struct(">I").pack(Basic.Deliver.index)  # a method frame's first four octets
_TAG = Struct(">Q")
_CONTENT = Struct(">HHQH")  # class, weight, body size, the first word of property flags
# Basic.Properties in their wire order: (flag, attribute, pamqp's decoder of its type).
_PROPERTIES = [
    (Basic.Properties.flags[name], name, decode.METHODS[getattr(Basic.Properties, "_" + name)])
    for name in Basic.Properties.__slots__
]


class BulkFrameReceiver(aiormq.connection.FrameReceiver):
    """One caller at a time, as aiormq calls it: the handshake in `Connection.connect`, then
    the connection's reader task (aiormq's lock is left unused)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self._pending = b""  # bytes read that do not yet make a whole frame
        self._frames: deque[ReceivedFrame] = deque()

    async def get_frame(self) -> ReceivedFrame:
        frames = self._frames
        if frames:
            return frames.popleft()
        if not self._pending and self.reader.at_eof():  # as aiormq's: ended between frames
            raise StopAsyncIteration
        while not frames:
            self._cut(self._pending + await self._read())
        return frames.popleft()

    async def _read(self) -> bytes:
        # The errors as aiormq's own receiver maps them, so its reader and aio-pika see the same.
        try:
            data = await self.reader.read(READ_SIZE)
        except ConnectionRefusedError as e:
            raise AMQPConnectionError(f"Server connection refused: {e!r}") from e
        except ConnectionResetError as e:
            raise AMQPConnectionError(f"Server connection reset: {e!r}") from e
        except ConnectionError as e:
            raise AMQPConnectionError(f"Server connection error: {e!r}") from e
        except OSError as e:
            raise AMQPConnectionError(f"Server communication error: {e!r}") from e
        if not data:
            raise AMQPConnectionError(
                "Server connection unexpectedly closed. "
                f"Read {len(self._pending)} bytes of a frame, the rest never came"
            )
        return data

    def _cut(self, data: bytes) -> None:
        if not self.started:
            if data.startswith(b"AMQP"):  # the broker's protocol header: it speaks another
                raise ProtocolSyntaxError("Unexpected AMQP protocol header")
            self.started = True
        start, size = 0, len(data)
        while size - start >= _OVERHEAD:
            end = start + _HEADER.unpack_from(data, start)[2] + _OVERHEAD
            if end > size:
                break
            try:
                self._frames.append(unmarshal(data[start:end]))
            except PAMQPException as e:
                raise InvalidFrameError(str(e)) from e
            start = end
        self._pending = data[start:] if start else data


def unmarshal(frame: bytes) -> ReceivedFrame:
    """pamqp's `frame.unmarshal` of one whole frame, the frames of a delivery decoded directly."""
    kind, channel, size = _HEADER.unpack_from(frame)
    if size and len(frame) == size + _OVERHEAD and frame[-1] == constants.FRAME_END:
        payload = frame[_HEADER.size : -1]
        try:
            if kind == constants.FRAME_BODY:
                return len(frame), channel, ContentBody(payload)
            if kind == constants.FRAME_METHOD and payload[:4] == _DELIVER:
                return len(frame), channel, _deliver(payload)
            if kind == constants.FRAME_HEADER:
                header = _content_header(payload)
                if header is not None:
                    return len(frame), channel, header
        except (StructError, ValueError, IndexError, TypeError):  # pamqp's to judge, below
            pass
    return pamqp.frame.unmarshal(frame)


def _deliver(payload: bytes) -> Basic.Deliver:
    """basic.deliver's fields, in order: consumer tag, delivery tag, redelivered (one bit in
    an octet), exchange, routing key."""
    method = Basic.Deliver()
    used, method.consumer_tag = decode.short_str(payload[4:])
    at = 4 + used
    method.delivery_tag = _TAG.unpack_from(payload, at)[0]
    method.redelivered = bool(payload[at + 8] & 1)
    used, method.exchange = decode.short_str(payload[at + 9 :])
    at += 9 + used
    used, method.routing_key = decode.short_str(payload[at:])
    if at + used != len(payload):
        raise ValueError("basic.deliver is not as long as its frame")
    return method


def _content_header(payload: bytes) -> ContentHeader | None:
    """None for a header with a second word of flags (pamqp reads those)."""
    header = ContentHeader()
    header.class_id, header.weight, header.body_size, flags = _CONTENT.unpack_from(payload)
    if flags & 1:
        return None
    properties, data = header.properties, payload[_CONTENT.size :]
    for flag, name, read in _PROPERTIES:
        if flags & flag:
            used, value = read(data)
            setattr(properties, name, value)
            data = data[used:]
    return header


def install() -> None:
    """Idempotent; called before each of our connections is made (worker/broker/nodes.py)."""
    aiormq.connection.FrameReceiver = BulkFrameReceiver  # type: ignore[misc]
