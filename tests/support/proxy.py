"""A TCP proxy the test controls, to take a service away from a worker and give it back."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from tests.support.cli import free_port


@dataclass
class Proxy:
    target_host: str
    target_port: int
    port: int = field(default_factory=free_port)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and drop every open one, as a broker that went away."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, upstream_w}
        await asyncio.gather(self._pipe(client_r, upstream_w), self._pipe(upstream_r, client_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
