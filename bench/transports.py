"""HTTP clients compared: N signed-size POSTs at 64 in flight to the benchmark's receiver.

    python -m bench.transports [N]

Prints requests per second for each; the figures are in the README, Performance.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bench.procs import Receiver
from worker.deliver import Sender
from worker.model import Schema

BODY = b'{"type":"leaving","data":{' + b'"k":"v",' * 200 + b'"end":1}}'
HEADERS = {"content-type": "application/json", "webhook-id": "x:1", "queue-hooks-attempt": "1"}
IN_FLIGHT = 64

Post = Callable[[str], Awaitable[int]]


async def run(post: Post, url: str, n: int) -> float:
    queue = iter(range(n))

    async def lane() -> None:
        for _ in queue:
            status = await post(url)
            assert status == 204, status

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    return n / (time.perf_counter() - started)


async def httpx_default(url: str, n: int) -> float:
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(limits=limits) as client:

        async def post(u: str) -> int:
            return (await client.post(u, content=BODY, headers=HEADERS)).status_code

        return await run(post, url, n)


async def httpx_aiohttp(url: str, n: int) -> float:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024))
    async with httpx.AsyncClient(transport=AiohttpTransport(client=session)) as client:

        async def post(u: str) -> int:
            return (await client.post(u, content=BODY, headers=HEADERS)).status_code

        return await run(post, url, n)


async def direct(
    transport: httpx.AsyncBaseTransport, request: Callable[[], httpx.Request], url: str, n: int
) -> float:
    """httpx.Request in, httpx.Response out, but no AsyncClient: the transport is called as is."""
    try:

        async def post(_u: str) -> int:
            response = await transport.handle_async_request(request())
            await response.aread()
            await response.aclose()
            return response.status_code

        return await run(post, url, n)
    finally:
        await transport.aclose()


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024))


async def httpx_transport_direct(url: str, n: int) -> float:
    parsed = httpx.URL(url)
    return await direct(
        AiohttpTransport(client=_session()),
        lambda: httpx.Request("POST", parsed, content=BODY, headers=HEADERS),
        url, n,
    )  # fmt: skip


async def aiohttp_direct(url: str, n: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024)) as session:

        async def post(u: str) -> int:
            async with session.post(u, data=BODY, headers=HEADERS) as response:
                await response.read()
                return response.status

        return await run(post, url, n)


async def _drive_transport(transport: httpx.AsyncBaseTransport, url: str, n: int) -> float:
    """An httpx transport called as the worker calls it: a Request in, status read, drained."""
    parsed = httpx.URL(url)
    timeout = {"timeout": httpx.Timeout(10.0).as_dict()}
    try:

        async def post(_u: str) -> int:
            request = httpx.Request(
                "POST", parsed, content=BODY, headers=HEADERS, extensions=timeout
            )
            response = await transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
            return response.status_code

        return await run(post, url, n)
    finally:
        await transport.aclose()


# The candidates not chosen are not dependencies: `pip install pyreqwest pyqwest httpx-curl-cffi
# aiosonic rnet` to run their rows (a row whose package is missing says so).
def _optional(name: str) -> Any:
    return importlib.import_module(name)


async def pyreqwest_transport(url: str, n: int) -> float:
    client = _optional("pyreqwest.client").ClientBuilder().max_connections(1024).build()
    glue = _optional("pyreqwest.compatibility.httpx")
    return await _drive_transport(glue.HttpxTransport(client), url, n)


async def pyreqwest_direct(url: str, n: int) -> float:
    client = _optional("pyreqwest.client").ClientBuilder().max_connections(1024).build()
    try:

        async def post(u: str) -> int:
            builder = client.post(u).headers(HEADERS).body_bytes(BODY)
            async with builder.build_streamed() as response:
                await response.body_reader.read()
                return int(response.status)

        return await run(post, url, n)
    finally:
        await client.close()


async def pyqwest_transport(url: str, n: int) -> float:
    pyqwest, glue = _optional("pyqwest"), _optional("pyqwest.httpx")
    inner = pyqwest.HTTPTransport(follow_redirects=False, enable_otel=False)
    return await _drive_transport(glue.AsyncPyqwestTransport(inner), url, n)


async def curl_cffi_transport(url: str, n: int) -> float:
    glue = _optional("httpx_curl_cffi")
    return await _drive_transport(glue.AsyncCurlTransport(max_clients=IN_FLIGHT), url, n)


async def aiosonic_direct(url: str, n: int) -> float:
    aiosonic = _optional("aiosonic")
    connector = aiosonic.TCPConnector(pool_configs={":default": {"size": IN_FLIGHT}})
    client = aiosonic.HTTPClient(connector=connector)

    async def post(u: str) -> int:
        response = await client.post(u, data=BODY, headers=HEADERS)
        await response.content()
        return int(response.status_code)

    return await run(post, url, n)


async def rnet_direct(url: str, n: int) -> float:
    client = _optional("rnet").Client()

    async def post(u: str) -> int:
        response = await client.post(u, body=BODY, headers=HEADERS)
        await response.bytes()
        return int(response.status)

    return await run(post, url, n)


async def worker_sender(url: str, n: int) -> float:
    """What the worker does per attempt: headers, signature, timeout, the client it uses."""
    schema = Schema(1, 1, "bench", url, "whsec_" + "A" * 44, (), 10.0)
    sender = Sender(allow_private=True)
    target = sender.target(schema)
    try:

        async def post(_u: str) -> int:
            attempt = await sender.post(target, BODY, "x:1", 1)
            return attempt.status or 0

        return await run(post, url, n)
    finally:
        await sender.aclose()


CLIENTS: dict[str, Callable[[str, int], Awaitable[float]]] = {
    "httpx, its own pool (httpcore)": httpx_default,
    "httpx over httpx-aiohttp": httpx_aiohttp,
    "httpx-aiohttp transport, no AsyncClient": httpx_transport_direct,
    "aiohttp directly": aiohttp_direct,
    "pyreqwest httpx transport, no AsyncClient": pyreqwest_transport,
    "pyreqwest directly": pyreqwest_direct,
    "pyqwest httpx transport, no AsyncClient": pyqwest_transport,
    "httpx-curl-cffi transport, no AsyncClient": curl_cffi_transport,
    "aiosonic directly": aiosonic_direct,
    "rnet directly": rnet_direct,
    "worker.deliver.Sender (as shipped)": worker_sender,
}


async def main(n: int, only: list[str]) -> None:
    rx = Receiver(18555)
    await rx.start()
    try:
        for name, bench in CLIENTS.items():
            if only and not any(o in name for o in only):
                continue
            cpu = time.process_time()  # this process only: the receiver is another one
            try:
                rate = await bench(rx.url("/fast/t"), n)
            except ImportError as exc:
                print(f"{name:<40} not installed ({exc.name})", flush=True)
                continue
            cpu_us = (time.process_time() - cpu) / n * 1e6
            print(f"{name:<40} {rate:>8.0f} requests/s {cpu_us:>6.1f} us CPU/request", flush=True)
    finally:
        await rx.stop()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000, sys.argv[2:]))
