"""The benchmark's receiver: a separate process, raw asyncio on uvloop, so it is never what
limits the figures. It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies).

Behaviour by the first path segment of a POST:
- `/fast/...` answers 204 at once;
- `/slow/...` answers 204 after 200 ms;
- `/down/...` reads the request and never answers (the connection stays open);
- `/lat/...` answers 204 at once and records the arrival time of each webhook-id;
- `/degrade/...` degrades under load: with up to DEGRADE_KNEE requests of that path in
  flight it answers 204 after DEGRADE_BASE seconds, beyond that its answer takes longer in
  proportion (base * in flight / knee: a queue in front of it), and beyond DEGRADE_WALL in
  flight it answers 503 at once. Its segment counts the requests in flight at each arrival.
Control: `GET /_stats` (JSON counts and first/last arrival per path), `GET /_arrivals`
(the recorded latency arrivals), `POST /_reset`.

    python -m bench.receiver PORT
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field

import orjson

SLOW_SECONDS = 0.2
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
DEGRADE_BASE = 0.02
DEGRADE_KNEE = 64
DEGRADE_WALL = 128


@dataclass
class Segment:
    count: int = 0
    signed: int = 0
    first: float = 0.0
    last: float = 0.0
    inflight: int = 0  # /degrade/: requests of this path not answered yet
    inflight_sum: int = 0  # summed at each arrival: / count is the mean concurrency seen
    peak: int = 0
    refused: int = 0  # answered 503


@dataclass
class State:
    segments: dict[str, Segment] = field(default_factory=dict)
    arrivals: list[tuple[str, float]] = field(default_factory=list)

    def record(self, path: str, signed: bool) -> float:
        now = time.time()
        seg = self.segments.get(path)
        if seg is None:
            seg = self.segments[path] = Segment(first=now)
        seg.count += 1
        seg.signed += signed
        seg.last = now
        return now

    def segment(self, path: str) -> Segment:
        return self.segments[path]

    def stats(self) -> bytes:
        return orjson.dumps({k: vars(v) for k, v in self.segments.items()})


class Http(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.need: int | None = None  # bytes of head + body when the head is parsed
        self.head: tuple[str, str, dict[bytes, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._one():
            pass

    def _one(self) -> bool:
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            method, path, _ = lines[0].decode("latin-1").split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            self.head = (method, path, headers)
            self.need = end + 4 + int(headers.get(b"content-length", b"0"))
        assert self.need is not None
        if len(self.buffer) < self.need:
            return False
        method, path, headers = self.head
        del self.buffer[: self.need]
        self.head, self.need = None, None
        self._answer(method, path, headers)
        return True

    def _answer(self, method: str, path: str, headers: dict[bytes, bytes]) -> None:
        assert self.transport is not None
        if path.startswith("/_"):
            self._control(method, path)
            return
        segment = path.split("/", 2)[1]
        now = self.state.record(path, b"webhook-signature" in headers)
        if segment == "lat":
            self.state.arrivals.append((headers.get(b"webhook-id", b"").decode(), now))
        if segment == "down":
            return  # never answers
        if segment == "degrade":
            self._degrade(self.state.segment(path))
            return
        if segment == "slow":
            asyncio.get_running_loop().call_later(SLOW_SECONDS, self._write, NO_CONTENT)
            return
        self.transport.write(NO_CONTENT)

    def _degrade(self, seg: Segment) -> None:
        if seg.inflight >= DEGRADE_WALL:
            seg.refused += 1
            self._write(UNAVAILABLE)
            return
        seg.inflight += 1
        seg.inflight_sum += seg.inflight
        seg.peak = max(seg.peak, seg.inflight)
        delay = DEGRADE_BASE * max(1.0, seg.inflight / DEGRADE_KNEE)

        def answer() -> None:
            seg.inflight -= 1
            self._write(NO_CONTENT)

        asyncio.get_running_loop().call_later(delay, answer)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _control(self, method: str, path: str) -> None:
        if path == "/_reset":
            self.state.segments.clear()
            self.state.arrivals.clear()
            body = b"{}"
        elif path == "/_arrivals":
            body = orjson.dumps(self.state.arrivals)
        else:
            body = self.state.stats()
        head = (
            f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        self._write(head.encode() + body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int) -> None:
    state = State()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Http(state), "127.0.0.1", port, backlog=4096)
    print(f"receiver listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    import uvloop

    uvloop.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
