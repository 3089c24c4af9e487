"""All HTTP: the client, Standard Webhooks signing, and one attempt of one delivery.

httpx is the API (Request, Response, the transport interface); the transport is aiohttp's
(httpx-aiohttp), called directly rather than through httpx.AsyncClient: at 64 in flight httpx's
own pool made about 400 requests/s, AsyncClient over this transport about 4,000 and the
transport alone about 11,000 (the README, Performance). The client's extras are not wanted here
anyway: no cookies kept between receivers, no redirects followed, our own timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from httpx_aiohttp import AiohttpTransport
from standardwebhooks.webhooks import Webhook

from worker import __version__
from worker.model import Schema

log = structlog.get_logger("queue_hooks.deliver")

_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
RESPONSE_CAP = 64 * 1024  # read at most this much of a reply: we only need its status
# The headers we set; a schema's static headers can never replace them (contract §5), nor the
# ones that would corrupt the request itself.
PROTECTED = frozenset(
    {"content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature",
     "queue-hooks-attempt", "host", "content-length", "transfer-encoding", "connection"}
)  # fmt: skip


class BlockedTarget(OSError):
    """The schema's address is loopback, private, link-local, multicast or reserved."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one HTTP request came to. `status` is None when no response arrived."""

    status: int | None
    duration: float
    error: str | None = None
    refused: bool = False  # connection refused or reset before a response: worth a quick retry
    blocked: bool = False
    retry_after: str | None = None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address a gateway would reach: judge that one too.
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(v4 is not None and not _is_public(str(v4)) for v4 in embedded):
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def guarded_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp's socket factory: the last word on every address about to be connected to.

    aiohttp skips the resolver for hosts it takes for IP literals, and then lets the OS parse
    them (`127.1` and `2130706433` are 127.0.0.1), so the address is normalised the same way
    here and refused unless public: no URL spelling and no DNS answer gets around it.
    """
    family, kind, proto, _name, sockaddr = addr_info
    try:
        found = socket.getaddrinfo(sockaddr[0], sockaddr[1], family, kind, proto, _NUMERIC)
    except socket.gaierror:
        raise BlockedTarget(f"{sockaddr[0]} is not an address that can be checked") from None
    for *_rest, address in found:
        if not _is_public(str(address[0])):
            raise BlockedTarget(f"{address[0]} is not a public address")
    return socket.socket(family, kind, proto)


def check_host(host: str) -> None:
    """Raises BlockedTarget for an IP literal that is not public (no DNS involved)."""
    try:
        public = _is_public(host.strip("[]"))
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if not public:
        raise BlockedTarget(f"{host} is not a public address")


class GuardedResolver(AbstractResolver):
    """Checks the addresses actually connected to, so DNS changed after save cannot sneak by."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if _is_public(r["host"])]
        if not allowed:
            shown = ", ".join(sorted({r["host"] for r in found}))
            raise BlockedTarget(f"{host} resolves to {shown}, not a public address")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def sign(schema: Schema, webhook_id: str, at: datetime, body: bytes, now: float) -> str | None:
    """`v1,<sig>`; after a rotation, also the previous secret's, space-separated."""
    secrets = [schema.secret] if schema.secret else []
    if schema.previous_secret and schema.previous_until and now < schema.previous_until:
        secrets.append(schema.previous_secret)
    if not secrets:
        return None
    text = body.decode()
    return " ".join(_signer(s).sign(webhook_id, at, text) for s in secrets)


def request_headers(
    schema: Schema, webhook_id: str, attempt: int, body: bytes, now: float
) -> dict[str, str]:
    at = datetime.fromtimestamp(int(now), tz=UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": f"queue-hooks/{__version__}",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now)),
        "queue-hooks-attempt": str(attempt),
    }
    signature = sign(schema, webhook_id, at, body, now)
    if signature:
        headers["webhook-signature"] = signature
    for name, value in schema.headers:
        if name.lower() not in PROTECTED:
            headers[name] = value
    return headers


class Sender:
    """One shared client; `post` never raises for what a receiver or the network does."""

    def __init__(self, allow_private: bool, max_connections: int = 1024) -> None:
        self._allow_private = allow_private
        self._warned: set[tuple[int, str]] = set()
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            resolver=None if allow_private else GuardedResolver(),
            socket_factory=None if allow_private else guarded_socket,
            ttl_dns_cache=10,
            keepalive_timeout=30,
        )
        session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        self._transport = AiohttpTransport(client=session)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def post(self, schema: Schema, body: bytes, webhook_id: str, attempt: int) -> Attempt:
        started = time.perf_counter()
        headers = request_headers(schema, webhook_id, attempt, body, time.time())
        self._warn_plain_http(schema)
        try:
            if not self._allow_private:
                check_host(_hostname(schema.url))
            async with asyncio.timeout(schema.timeout):
                return await self._send(schema, body, headers, started)
        except TimeoutError:
            took = time.perf_counter() - started
            return Attempt(None, took, f"no response within {schema.timeout * 1000:.0f} ms")
        except Exception as exc:
            return _failed(exc, time.perf_counter() - started)

    def _warn_plain_http(self, schema: Schema) -> None:
        """Plain http is allowed (a receiver on a private network) but said once per schema."""
        if schema.url[:7].lower() != "http://" or (schema.id, schema.url) in self._warned:
            return
        self._warned.add((schema.id, schema.url))
        log.warning(
            "schema URL is plain http: deliveries and signatures travel unencrypted",
            schema_id=schema.id, url=describe_target(schema.url),
        )  # fmt: skip

    async def _send(
        self, schema: Schema, body: bytes, headers: dict[str, str], started: float
    ) -> Attempt:
        request = httpx.Request(
            "POST", _url(schema.url), content=body, headers=headers,
            extensions={"timeout": _timeouts(schema.timeout)},
        )  # fmt: skip
        response = await self._transport.handle_async_request(request)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= RESPONSE_CAP:
                    break
        finally:
            await response.aclose()
        return Attempt(
            response.status_code,
            time.perf_counter() - started,
            retry_after=response.headers.get("retry-after"),
        )


# Parsed once per schema URL, not once per request.
@lru_cache(maxsize=4096)
def _url(url: str) -> httpx.URL:
    return httpx.URL(url)


@lru_cache(maxsize=4096)
def _hostname(url: str) -> str:
    return urlsplit(url).hostname or ""


@lru_cache(maxsize=64)
def _timeouts(seconds: float) -> dict[str, float | None]:
    return httpx.Timeout(seconds).as_dict()


def _failed(exc: BaseException, took: float) -> Attempt:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        if isinstance(e, BlockedTarget):
            return Attempt(None, took, f"blocked: {e}", blocked=True)
        if isinstance(e, aiohttp.ClientConnectorError) and isinstance(
            getattr(e, "os_error", None), BlockedTarget
        ):
            return Attempt(None, took, f"blocked: {e.os_error}", blocked=True)
    refused = any(isinstance(e, ConnectionRefusedError | ConnectionResetError) for e in chain) or (
        isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower()
    )
    # httpx-aiohttp maps aiohttp's errors loosely (a dropped connection becomes ConnectTimeout):
    # name the error aiohttp raised, it says what happened.
    shown = next((e for e in chain if isinstance(e, aiohttp.ClientError)), exc)
    detail = " ".join(str(shown).split()) or type(shown).__name__
    return Attempt(None, took, f"{type(shown).__name__}: {detail}"[:300], refused=refused)


@lru_cache(maxsize=4096)  # called for every outcome judged, with a schema's few URLs
def describe_target(url: str) -> str:
    """A URL as it may appear in errors and dead letters: no userinfo, no query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, as it was written
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
