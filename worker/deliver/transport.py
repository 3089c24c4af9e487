"""An httpx transport over an aiohttp session: httpx.Request in, httpx.Response out.

Why our own rather than httpx-aiohttp's (which we used before): per request that one builds
an aiohttp timeout, a string of the URL that aiohttp parses again, wraps every step in a
context manager that maps exceptions, and needs the request built with `content=`, which
makes httpx encode and prepare the body again (about 10 us). Measured with
`python -m bench.transports` (CPU per request of the client process): httpx-aiohttp's
transport about 83 us, this one with the request built with `stream=` about 58 us, aiohttp
alone about 43 us.

The request extension `DEADLINE` (seconds) bounds the whole exchange, the reply's body read
included: aiohttp's own total timeout does that. It replaced an `asyncio.timeout` around the
attempt, which on Python 3.11 costs three `getpid` system calls a request (asyncio's C code
checks the process id each time it looks up the running loop), about 5 us here.

What it does not do, on purpose: follow redirects, decompress, keep cookies (the session has
none), proxies. Host and Content-Length are aiohttp's to write (from the URL and the bytes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

import aiohttp
import httpx
import yarl

DEADLINE = "queue_hooks.deadline"
# The request's URL as text, when the caller has it already: httpx composes it again from its
# parts at every str().
URL_TEXT = "queue_hooks.url"

# The httpx exception for each aiohttp one, most specific first (the first match wins).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.NetworkError),
)


def _mapped(exc: aiohttp.ClientError) -> httpx.TransportError:
    ours = next(o for theirs, o in _ERRORS if isinstance(exc, theirs))  # ClientError: the last
    return ours(str(exc) or type(exc).__name__)


class _Body(httpx.AsyncByteStream):
    """The reply's body as aiohttp reads it; closing hands the connection back to the pool."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        # Released with its body read: the connection is reused; cut short: it is closed.
        await self._response.__aexit__(None, None, None)


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        options: dict[str, Any] = {}
        timeout = request.extensions.get("timeout")
        deadline = request.extensions.get(DEADLINE)
        if deadline is not None:
            options["timeout"] = _whole(deadline)
        elif timeout:
            options["timeout"] = aiohttp.ClientTimeout(
                sock_connect=timeout.get("connect"),
                sock_read=timeout.get("read"),
                connect=timeout.get("pool"),
            )
        try:
            response = await self._session.request(
                request.method,
                _yarl(request.extensions.get(URL_TEXT) or str(request.url)),
                headers=request.headers.multi_items(),
                data=request.read() or None,
                allow_redirects=False,
                **options,
            )
        except aiohttp.ClientError as exc:
            raise _mapped(exc) from exc
        return httpx.Response(
            response.status, headers=response.raw_headers, stream=_Body(response), request=request
        )

    async def aclose(self) -> None:
        await self._session.close()


@lru_cache(maxsize=256)  # a schema's timeout: a handful of values
def _whole(seconds: float) -> aiohttp.ClientTimeout:
    # No rounding up to the next second (aiohttp's default for 5 s and more): a schema's
    # timeout is kept to the millisecond it says.
    return aiohttp.ClientTimeout(total=seconds, ceil_threshold=float("inf"))


@lru_cache(maxsize=4096)  # a schema's URL, parsed once: aiohttp would parse it every request
def _yarl(url: str) -> yarl.URL:
    return yarl.URL(url, encoded=True)
