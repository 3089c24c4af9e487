"""All HTTP: the client, Standard Webhooks signing, and one attempt of one delivery.

httpx is the API (Request, Response, the transport interface); the transport is ours over
aiohttp (`transport.py`), called directly rather than through httpx.AsyncClient: at 64 in
flight httpx's own pool made about 600 requests/s, AsyncClient over httpx-aiohttp about 6,000
and a transport called directly 11,000 or more (the README, Performance). The client's extras
are not wanted here anyway: no cookies kept between receivers, no redirects followed, our own
timeout over the whole attempt. `guard.py` keeps deliveries off private addresses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urlsplit

import aiohttp
import httpx
import structlog
from standardwebhooks.webhooks import Webhook

from worker import __version__
from worker.deliver.guard import BlockedTarget, GuardedResolver, check_host, guarded_socket
from worker.deliver.transport import DEADLINE, URL_TEXT, AiohttpTransport
from worker.model import Schema

log = structlog.get_logger("queue_hooks.deliver")

RESPONSE_CAP = 64 * 1024  # read at most this much of a reply: we only need its status
_NO_BODY = frozenset({204, 304})
# The headers we set; a schema's static headers can never replace them (contract §5), nor the
# ones that would corrupt the request itself.
PROTECTED = frozenset(
    {"content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature",
     "queue-hooks-attempt", "host", "content-length", "transfer-encoding", "connection"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one HTTP request came to. `status` is None when no response arrived."""

    status: int | None
    duration: float
    error: str | None = None
    refused: bool = False  # connection refused or reset before a response: worth a quick retry
    blocked: bool = False
    retry_after: str | None = None


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
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),  # each request carries its deadline
        )
        self._transport = AiohttpTransport(session)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def post(self, schema: Schema, body: bytes, webhook_id: str, attempt: int) -> Attempt:
        started = time.perf_counter()
        headers = request_headers(schema, webhook_id, attempt, body, time.time())
        self._warn_plain_http(schema)
        try:
            if not self._allow_private:
                check_host(_hostname(schema.url))
            return await self._send(schema, body, headers, started)
        except TimeoutError:  # the deadline (transport.DEADLINE): aiohttp raises this one
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
        # `stream=`, not `content=`: httpx would encode the body and add Host and Content-Length
        # (about 7 us a request); the transport sends the bytes and aiohttp writes those two.
        request = httpx.Request(
            "POST", _url(schema.url), headers=headers, stream=httpx.ByteStream(body),
            extensions={DEADLINE: schema.timeout, URL_TEXT: _url_text(schema.url)},
        )  # fmt: skip
        # Every value is ASCII (httpx refuses any other in a str), so there is nothing to
        # detect: httpx would try each header in ascii, then utf-8, on every request.
        request.headers.encoding = "ascii"
        response = await self._transport.handle_async_request(request)
        try:
            # Read (up to the cap) so that the connection can be reused; 204 and 304 have no
            # body to read (RFC 9110), and httpx's streaming costs a few us a response.
            read = 0
            if response.status_code not in _NO_BODY:
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
def _url_text(url: str) -> str:
    """As httpx normalised it (percent-encoding, IDNA): what is sent."""
    return str(_url(url))


@lru_cache(maxsize=4096)
def _hostname(url: str) -> str:
    return urlsplit(url).hostname or ""


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
    # The transport maps aiohttp's errors to httpx's broad classes: name the error aiohttp
    # raised, it says what happened.
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


__all__ = [
    "PROTECTED", "Attempt", "BlockedTarget", "Sender", "check_host", "describe_target",
    "guarded_socket", "request_headers", "sign",
]  # fmt: skip
