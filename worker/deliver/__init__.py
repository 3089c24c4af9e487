"""All HTTP out: a schema's delivery target, Standard Webhooks signing, and one attempt.

aiohttp directly, without httpx over it: `python -m bench.transports` measured about 44 us
of CPU per request for aiohttp alone and 69 us for httpx's Request and Response over our own
aiohttp transport (73 us for the whole Sender), a third of the worker's CPU per delivery spent
on a layer that only translated. The layer gave nothing here: no cookies between receivers, no
redirects followed, our own deadline over the whole attempt. httpx stays where its API serves
(the command line asking a worker's /readyz, the tests' clients). `guard.py` keeps deliveries
off private addresses.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
import structlog
import yarl
from standardwebhooks.webhooks import Webhook

from worker import __version__
from worker.deliver.guard import BlockedTarget, GuardedResolver, check_host, guarded_socket
from worker.model import Attempt, Schema, describe_target

log = structlog.get_logger("queue_hooks.deliver")

RESPONSE_CAP = 64 * 1024  # read at most this much of a reply: we only need its status
_NO_BODY = frozenset({204, 304})
# The headers we set; a schema's static headers can never replace them (contract §5), nor the
# ones that would corrupt the request itself.
PROTECTED = frozenset(
    {"content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature",
     "queue-hooks-attempt", "host", "content-length", "transfer-encoding", "connection"}
)  # fmt: skip
USER_AGENT = f"queue-hooks/{__version__}"
# RFC 9110: a header name is a token; a value holds no control character but a tab.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_fault(name: str, value: str) -> str | None:
    """Why no request can carry this header as it is; None when one can. The one rule: the
    admin commands refuse such a header (worker/store/values.py), and a row seeded by SQL
    with one is never sent (`build_target`)."""
    if not _TOKEN.match(name):
        return "not a valid header name"
    if _CONTROL.search(value):
        return "a value cannot hold a line break or another control character"
    return None


@dataclass(frozen=True, slots=True, repr=False)
class Target:
    """A schema made ready to be called, once, when the hook cache loads it: the URL parsed,
    an IP literal host checked, the deadline and the signers built, the static headers
    filtered. Its repr shows where it goes, never a secret, a query or userinfo."""

    schema_id: int
    url: yarl.URL
    shown: str  # the URL as errors show it (model.describe_target)
    timeout: float  # seconds, the whole attempt
    deadline: aiohttp.ClientTimeout
    static: tuple[tuple[str, str], ...]  # the schema's own headers, those it may set
    signer: Webhook | None
    previous: Webhook | None = None
    previous_until: float | None = None
    blocked: str | None = None  # why its address is refused, when known without DNS
    plain_http: bool = False
    secret_error: str | None = None  # it cannot sign: nothing is sent (model.Schema)
    url_error: str | None = None  # its URL cannot be used by any client: nothing is sent
    # (taken as `secret_error` is: worker/pipeline.py `_unsendable`)

    def __repr__(self) -> str:
        return f"Target(schema={self.schema_id}, {self.shown})"

    def signature(self, webhook_id: str, at: datetime, body: bytes, now: float) -> str | None:
        """`v1,<sig>`; after a rotation, also the previous secret's, space-separated."""
        signers = [self.signer] if self.signer else []
        if self.previous and self.previous_until and now < self.previous_until:
            signers.append(self.previous)
        if not signers:
            return None
        text = body.decode()
        return " ".join(s.sign(webhook_id, at, text) for s in signers)


def build_target(schema: Schema, allow_private: bool) -> Target:
    try:
        url, shown = yarl.URL(schema.url), describe_target(schema.url)
    except ValueError as exc:
        return _unusable(schema, f"URL cannot be used: {exc}")
    static = tuple((k, v) for k, v in schema.headers if k.lower() not in PROTECTED)
    for name, value in static:
        # A name with a blank folds into our line before it or poses as one of ours to a
        # lenient parser; a line break writes a header of its own. Sent without it, an
        # Authorization would go missing: nothing is sent, as for a URL no client can use.
        if fault := header_fault(name, value):
            return _unusable(schema, f"header {name!r} cannot be sent: {fault}")
    blocked = None
    if not allow_private:
        try:
            check_host(urlsplit(schema.url).hostname or "")
        except BlockedTarget as exc:
            blocked = str(exc)
    return Target(
        schema_id=schema.id,
        url=url,
        shown=shown,
        timeout=schema.timeout,
        # No rounding up to the next second (aiohttp's default for 5 s and more): a schema's
        # timeout is kept to the millisecond it says.
        deadline=aiohttp.ClientTimeout(total=schema.timeout, ceil_threshold=float("inf")),
        static=static,
        signer=Webhook(schema.secret) if schema.secret else None,
        previous=Webhook(schema.previous_secret) if schema.previous_secret else None,
        previous_until=schema.previous_until,
        blocked=blocked,
        plain_http=schema.url[:7].lower() == "http://",
        secret_error=schema.secret_error,
    )


def _unusable(schema: Schema, error: str) -> Target:
    """The table's check takes URLs no client can use (`http://h:99999/`, `http://[::1/`),
    and headers no request can carry: such a row, seeded by SQL, must not stop the load of
    every other schema (and with it every worker), nor be sent as it stands. Its deliveries
    take the retry path without a request, as a schema's unreadable secret does
    (policy.not_sendable): exhausted saying why, unless fixed meanwhile."""
    log.error("schema cannot be sent to", schema_id=schema.id, error=error)
    return Target(
        schema_id=schema.id, url=yarl.URL(), shown=f"schema {schema.id}", timeout=schema.timeout,
        deadline=aiohttp.ClientTimeout(total=schema.timeout), static=(), signer=None,
        url_error=f"{error} (schema {schema.id})",
    )  # fmt: skip


def request_headers(
    target: Target, webhook_id: str, attempt: int, body: bytes, now: float
) -> dict[str, str]:
    at = datetime.fromtimestamp(int(now), tz=UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now)),
        "queue-hooks-attempt": str(attempt),
    }
    signature = target.signature(webhook_id, at, body, now)
    if signature:
        headers["webhook-signature"] = signature
    headers.update(target.static)
    return headers


class Sender:
    """One shared client; `post` never raises for what a receiver or the network does."""

    def __init__(self, allow_private: bool, max_connections: int = 1024) -> None:
        self.allow_private = allow_private
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._warned: set[tuple[int, str]] = set()

    def target(self, schema: Schema) -> Target:
        return build_target(schema, self.allow_private)

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop (aiohttp binds its session to it).
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                resolver=None if self.allow_private else GuardedResolver(),
                socket_factory=None if self.allow_private else guarded_socket,
                ttl_dns_cache=10,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),  # each request carries its deadline
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, target: Target, body: bytes, webhook_id: str, attempt: int) -> Attempt:
        started = time.perf_counter()
        if target.blocked:
            return Attempt(None, 0.0, f"blocked: {target.blocked}", blocked=True)
        headers = request_headers(target, webhook_id, attempt, body, time.time())
        self._warn_plain_http(target)
        try:
            return await self._send(target, body, headers, started)
        except TimeoutError:  # the deadline: aiohttp raises this one
            took = time.perf_counter() - started
            return Attempt(None, took, f"no response within {target.timeout * 1000:.0f} ms")
        except Exception as exc:
            return _failed(exc, time.perf_counter() - started)

    def _warn_plain_http(self, target: Target) -> None:
        """Plain http is allowed (a receiver on a private network) but said once per schema."""
        if not target.plain_http or (target.schema_id, target.shown) in self._warned:
            return
        self._warned.add((target.schema_id, target.shown))
        log.warning(
            "schema URL is plain http: deliveries and signatures travel unencrypted",
            schema_id=target.schema_id, url=target.shown,
        )  # fmt: skip

    async def _send(
        self, target: Target, body: bytes, headers: dict[str, str], started: float
    ) -> Attempt:
        async with self._client().post(
            target.url, data=body, headers=headers, allow_redirects=False,
            timeout=target.deadline,
        ) as response:  # fmt: skip
            # Read (up to the cap) so that the connection can be reused; 204 and 304 have no
            # body to read (RFC 9110). Cut short, the connection is closed, not reused.
            if response.status not in _NO_BODY:
                read = 0
                async for chunk in response.content.iter_any():
                    read += len(chunk)
                    if read >= RESPONSE_CAP:
                        break
            return Attempt(
                response.status,
                time.perf_counter() - started,
                retry_after=response.headers.get("retry-after"),
            )


def _failed(exc: BaseException, took: float) -> Attempt:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        os_error = (
            getattr(e, "os_error", None) if isinstance(e, aiohttp.ClientConnectorError) else None
        )
        if isinstance(e, BlockedTarget) or isinstance(os_error, BlockedTarget):
            return Attempt(None, took, f"blocked: {os_error or e}", blocked=True)
    refused = any(
        isinstance(e, ConnectionRefusedError | ConnectionResetError)
        or isinstance(getattr(e, "os_error", None), ConnectionRefusedError | ConnectionResetError)
        for e in chain
    )
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return Attempt(None, took, f"{type(exc).__name__}: {detail}"[:300], refused=refused)


__all__ = [
    "PROTECTED", "Attempt", "BlockedTarget", "Sender", "Target", "build_target", "check_host",
    "describe_target", "guarded_socket", "header_fault", "request_headers",
]  # fmt: skip
