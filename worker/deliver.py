"""All HTTP: the client, Standard Webhooks signing, and one attempt of one delivery.

httpx is the API (Request, Response, the transport interface); the transport is pyreqwest's
(Rust reqwest/hyper), called directly rather than through httpx.AsyncClient: at 64 in flight it
made about 1.5x the requests per second of the httpx-aiohttp transport (docs/transport.md). The
client's extras are not wanted here anyway: no cookies kept between receivers, no redirects
followed, no proxy from the environment, our own timeout.

reqwest resolves names itself and Python cannot see the address it connects to, so the private
address guard resolves each host here, checks the addresses, and gives reqwest a client whose
DNS is pinned to the address checked: reqwest never looks the name up itself (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

import httpx
import structlog
from pyreqwest.client import ClientBuilder
from pyreqwest.compatibility.httpx import HttpxTransport
from pyreqwest.exceptions import DetailedPyreqwestError
from pyreqwest.http import Url
from standardwebhooks.webhooks import Webhook

from worker import __version__
from worker.model import Schema

log = structlog.get_logger("queue_hooks.deliver")

DNS_TTL = 10.0  # seconds a checked answer is used before the name is resolved again
PINNED_HOSTS = 1024  # clients kept, one per host name; the least recently used goes first
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


def check_host(host: str) -> None:
    """Raises BlockedTarget for an IP literal that is not public (no DNS involved)."""
    try:
        public = _is_public(host.strip("[]"))
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if not public:
        raise BlockedTarget(f"{host} is not a public address")


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


def _builder(max_connections: int) -> ClientBuilder:
    return (
        ClientBuilder()
        .max_connections(max_connections)
        .follow_redirects(False)
        .no_proxy()  # a proxy would connect on our behalf, past the guard
        .gzip(False)
        .brotli(False)
        .zstd(False)
        .deflate(False)
        .pool_idle_timeout(timedelta(seconds=30))
    )


def check_address(address: str) -> None:
    """Raises BlockedTarget unless `address` (an IP, as reqwest will connect to it) is public."""
    if not _is_public(address):
        raise BlockedTarget(f"{address} is not a public address")


@dataclass(slots=True)
class _Pinned:
    transport: HttpxTransport
    address: str
    until: float


class PinnedTransports:
    """One reqwest client per host name, its DNS pinned to a public address checked here.

    IP literals need no DNS: the host as reqwest parsed it (`127.1` and `2130706433` are
    127.0.0.1 to it too) is checked and sent through one shared client.
    """

    def __init__(self, max_connections: int) -> None:
        self._max = max_connections
        self._literal = HttpxTransport(_builder(max_connections).build())
        self._hosts: OrderedDict[str, _Pinned] = OrderedDict()

    async def for_url(self, url: str) -> HttpxTransport:
        host = _reqwest_host(url)
        try:
            check_address(host)
        except ValueError:
            return await self._for_name(host)
        return self._literal

    async def _for_name(self, host: str) -> HttpxTransport:
        pinned = self._hosts.get(host)
        now = time.monotonic()
        if pinned is not None and now < pinned.until:
            self._hosts.move_to_end(host)
            return pinned.transport
        address = await _resolve_public(host)
        if pinned is None or pinned.address != address:
            client = _builder(self._max).resolve(host, address, 0).build()
            pinned = _Pinned(HttpxTransport(client), address, 0.0)
        pinned.until = now + DNS_TTL
        self._hosts[host] = pinned
        self._hosts.move_to_end(host)
        if len(self._hosts) > PINNED_HOSTS:
            # Not closed: requests in flight finish on it; reqwest frees it when they are done.
            self._hosts.popitem(last=False)
        return pinned.transport

    async def aclose(self) -> None:
        for pinned in self._hosts.values():
            await pinned.transport.aclose()
        self._hosts.clear()
        await self._literal.aclose()


async def _resolve_public(host: str) -> str:
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc.strerror}") from None
    addresses = [str(info[4][0]) for info in found]
    allowed = [a for a in addresses if _is_public(a)]
    if not allowed:
        shown = ", ".join(sorted(set(addresses)))
        raise BlockedTarget(f"{host} resolves to {shown}, not a public address")
    return allowed[0]


@lru_cache(maxsize=4096)
def _reqwest_host(url: str) -> str:
    """The host as reqwest will read it (WHATWG rules: 0x7f.1 is 127.0.0.1), brackets off."""
    host = Url(str(_url(url))).host_str or ""
    return host.strip("[]")


class Sender:
    """One shared client; `post` never raises for what a receiver or the network does."""

    def __init__(self, allow_private: bool, max_connections: int = 1024) -> None:
        self._allow_private = allow_private
        self._warned: set[tuple[int, str]] = set()
        self._pinned = None if allow_private else PinnedTransports(max_connections)
        self._open = HttpxTransport(_builder(max_connections).build())

    async def aclose(self) -> None:
        await self._open.aclose()
        if self._pinned is not None:
            await self._pinned.aclose()

    async def post(self, schema: Schema, body: bytes, webhook_id: str, attempt: int) -> Attempt:
        started = time.perf_counter()
        headers = request_headers(schema, webhook_id, attempt, body, time.time())
        self._warn_plain_http(schema)
        try:
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
        url = _url(schema.url)
        transport = self._open
        if self._pinned is not None:
            transport = await self._pinned.for_url(schema.url)
        request = httpx.Request("POST", url, content=body, headers=headers)
        response = await transport.handle_async_request(request)
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


def _failed(exc: BaseException, took: float) -> Attempt:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        if isinstance(e, BlockedTarget):
            return Attempt(None, took, f"blocked: {e}", blocked=True)
    shown = next((e for e in chain if isinstance(e, DetailedPyreqwestError)), None)
    if shown is None:
        refused = any(isinstance(e, ConnectionRefusedError | ConnectionResetError) for e in chain)
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return Attempt(None, took, f"{type(exc).__name__}: {detail}"[:300], refused=refused)
    # reqwest says what happened in a chain of causes, the last the most precise one.
    causes = [str(c.get("message", "")) for c in (shown.details or {}).get("causes") or []]
    causes = [c for c in causes if c and not c.startswith("error sending request for url")]
    detail = ": ".join(causes[-2:]) or str(shown)
    if "invalid peer certificate" in detail:
        detail = f"certificate verify failed ({detail})"
    refused = any(word in detail for word in ("Connection refused", "Connection reset"))
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
