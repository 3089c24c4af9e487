"""A real HTTP receiver on 127.0.0.1 for the tests: records every request, answers as told."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, object]:
        data: dict[str, object] = orjson.loads(self.body)
        return data

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def attempt(self) -> int:
        return int(self.headers["queue-hooks-attempt"])


# path -> (request number for this path, starting at 1) -> response
Behaviour = Callable[[Received, int], Awaitable[web.StreamResponse] | web.StreamResponse]


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    _per_path: Counter[str] = field(default_factory=Counter)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def on(self, path: str, behaviour: Behaviour) -> None:
        self.behaviours[path] = behaviour

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> None:
        app = web.Application(client_max_size=16 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve(app, self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        got = Received(
            request.path, {k.lower(): v for k, v in request.headers.items()}, await request.read()
        )
        self._per_path[got.path] += 1
        n = self._per_path[got.path]
        async with self._changed:
            self.requests.append(got)
            self._changed.notify_all()
        behaviour = self.behaviours.get(got.path)
        if behaviour is None:
            return web.Response(status=204)
        result = behaviour(got, n)
        if isinstance(result, web.StreamResponse):
            return result
        return await result

    async def wait_for(
        self, count: int, path: str | None = None, within: float = 20.0
    ) -> list[Received]:
        """Waits until at least `count` requests (to `path`) arrived; returns them."""

        def matching() -> list[Received]:
            return self.requests if path is None else self.at(path)

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(matching()) >= count)
        return matching()


async def serve(app: web.Application, host: str, port: int = 0) -> tuple[web.AppRunner, int]:
    """Starts `app` on host:port (0: any free port); returns its runner and the port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    return runner, server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]


def status(code: int, headers: dict[str, str] | None = None) -> Behaviour:
    return lambda _r, _n: web.Response(status=code, headers=headers)


def fail_first(times: int, code: int = 500) -> Behaviour:
    return lambda _r, n: web.Response(status=code if n <= times else 204)


def hang(seconds: float) -> Behaviour:
    async def slow(_r: Received, _n: int) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=204)

    return slow
