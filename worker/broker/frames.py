"""Receiving AMQP frames in bulk: what the socket holds, cut into frames from one buffer.

aiormq's own `FrameReceiver.get_frame` reads each frame with an asyncio lock, a BytesIO and
three `readexactly` awaits (type, header, payload), and a message is three frames (deliver,
content header, body): about a third of a consumed message's CPU on this path (docs/
receivers.md, "An event no hook wants"). This one reads whatever the stream has buffered (up
to `READ_SIZE`) in one await, cuts every whole frame out of it and hands them out one by one;
a frame cut short waits in the buffer for the next read. The frames themselves are still
pamqp's `unmarshal`, and everything above (the connection's reader, its channels, heartbeats,
closes) is aiormq's own.

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

import aiormq.connection
import pamqp.frame
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError, ProtocolSyntaxError
from pamqp.exceptions import PAMQPException

ReceivedFrame = aiormq.connection.ReceivedFrame
READ_SIZE = 1 << 18  # a read takes what is buffered, up to this: the stream's own bound is lower
_HEADER = Struct(">BHI")  # type, channel, payload size
_OVERHEAD = _HEADER.size + 1  # the header, and the frame-end octet after the payload


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
                self._frames.append(pamqp.frame.unmarshal(data[start:end]))
            except PAMQPException as e:
                raise InvalidFrameError(str(e)) from e
            start = end
        self._pending = data[start:] if start else data


def install() -> None:
    """Idempotent; called before each of our connections is made (worker/broker/nodes.py)."""
    aiormq.connection.FrameReceiver = BulkFrameReceiver  # type: ignore[misc]
