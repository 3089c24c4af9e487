"""The outbound client cannot be turned into a weapon (issue 6, contract §5, §7).

Private targets are refused on the address actually connected to; TLS is verified; redirects
are never followed; a reply is read only up to a cap; every attempt has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
import trustme
from aiohttp import web

from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.processes import start_process, wait_consuming
from tests.support.receiver import Receiver, status
from tests.support.settings import TEST_DELAYS
from worker.broker import topology as t

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRIVATE_URLS = [
    "http://localhost:{port}/hook",  # a name that resolves to loopback
    "http://127.0.0.1:{port}/hook",  # an IP literal
    "http://0x7f.0.0.1:{port}/hook",  # a spelling the resolver reads as 127.0.0.1
    "http://[::1]:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.1.2.3:{port}/hook",  # private
    "http://224.0.0.1:{port}/hook",  # multicast
    "http://0.0.0.0:{port}/hook",
]


async def test_private_targets_are_blocked_on_the_address_connected_to(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    hooks = {}
    for url in PRIVATE_URLS:
        schema = await seed_schema(db, url.format(port=receiver.port), timeout_ms=2000)
        hooks[await seed_hook(db, 1, "joined", schema)] = url
    await start_worker(allow_private_targets=False)
    await platform.publish(event(1, "joined"))
    dead = await platform.dead_letters(len(hooks))
    assert {d.headers[t.H_HOOK_ID] for d in dead} == set(hooks)
    for letter in dead:
        assert letter.headers[t.H_REASON] == "blocked", letter.headers
        assert letter.headers[t.H_ATTEMPTS] == 0  # refused before any request
        error = str(letter.headers[t.H_ERROR])
        assert "not a public address" in error, error
    assert receiver.requests == []  # not one request reached the loopback receiver


async def test_odd_spellings_of_loopback_never_reach_it(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    """`127.1` and `2130706433` are 127.0.0.1 to the OS; the URL parser refuses them (and the
    socket guard would refuse the address): retried as a broken URL, then dead-lettered."""
    await seed_queue(db, 1, 1)
    for host in ("127.1", "2130706433"):
        schema = await seed_schema(db, f"http://{host}:{receiver.port}/hook")
        await seed_hook(db, 1, "joined", schema)
    await start_worker(allow_private_targets=False)
    await platform.publish(event(1, "joined"))
    dead = await platform.dead_letters(2)
    assert {d.headers[t.H_REASON] for d in dead} <= {"blocked", "exhausted"}
    assert receiver.requests == []


async def test_allowing_private_targets_lets_them_through(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, f"http://localhost:{receiver.port}/"))
    await start_worker(allow_private_targets=True)
    await platform.publish(event(1, "joined"))
    await receiver.wait_for(1)


@pytest.fixture
async def tls_receiver() -> AsyncIterator[Receiver]:
    """A receiver on https://127.0.0.1 with a certificate no public authority signed."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    rx = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rx._handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    assert site._server is not None
    rx.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield rx
    finally:
        await runner.cleanup()


async def test_an_unverifiable_certificate_is_never_delivered_to(
    db: Conn, platform: Platform, tls_receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(
        db, 1, "joined", await seed_schema(db, f"https://127.0.0.1:{tls_receiver.port}/")
    )
    await start_worker(allow_private_targets=True)
    await platform.publish(event(1, "joined"))
    (dead,) = await platform.dead_letters(1)
    assert dead.headers[t.H_REASON] == "exhausted"  # retried through the tiers, then given up
    assert "certificate verify failed" in str(dead.headers[t.H_ERROR])
    assert tls_receiver.requests == []


async def test_redirects_are_never_followed(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/moved")))
    receiver.on("/moved", status(307, {"Location": receiver.url("/elsewhere")}))
    await start_worker()
    await platform.publish(event(1, "joined"))
    (dead,) = await platform.dead_letters(1)
    assert dead.headers[t.H_REASON] == "rejected"
    assert "redirects are not followed" in str(dead.headers[t.H_ERROR])
    assert [r.path for r in receiver.requests] == ["/moved"]


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_a_reply_is_read_only_up_to_a_cap(
    db: Conn, platform: Platform, start_worker: StartWorker
) -> None:
    """A receiver that answers 200 with an endless body: delivered, not read to the end."""
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        total = 0
        with contextlib.suppress(ConnectionError):
            while total < 1 << 30:  # a gigabyte, were it all read
                await response.write(b"x" * 65536)
                total += 65536
        sent.append(total)
        return response

    async with server(endless) as url:
        await seed_queue(db, 1, 1)
        await seed_hook(db, 1, "joined", await seed_schema(db, url, timeout_ms=60_000))
        await start_worker()
        for _ in range(2):
            await platform.publish(event(1, "joined"))

        async def both_answered() -> bool:
            return len(sent) == 2

        await until(both_answered, within=30)
    assert all(total < 64 << 20 for total in sent), sent  # the worker hung up early
    assert await platform.depth(t.DEAD_QUEUE) == 0
    assert await platform.depth(t.RETRY_QUEUE) == 0


async def test_a_silent_receiver_runs_into_the_deadline(
    db: Conn, platform: Platform, start_worker: StartWorker
) -> None:
    """Accepts the connection and never answers: each attempt ends at the schema's timeout."""
    silent: list[asyncio.StreamWriter] = []

    async def accept(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    tcp = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    try:
        await seed_queue(db, 1, 1)
        await seed_hook(
            db, 1, "joined", await seed_schema(db, f"http://127.0.0.1:{port}/", timeout_ms=200)
        )
        await start_worker()
        await platform.publish(event(1, "joined"))
        (dead,) = await platform.dead_letters(1)
    finally:
        for writer in silent:
            writer.close()
        tcp.close()
    assert dead.headers[t.H_REASON] == "exhausted"
    assert dead.headers[t.H_ATTEMPTS] == len(TEST_DELAYS) + 1
    assert "no response within 200 ms" in str(dead.headers[t.H_ERROR])


async def test_a_reply_trickling_its_body_runs_into_the_deadline(
    db: Conn, platform: Platform, start_worker: StartWorker
) -> None:
    """Answers 200 at once, then a byte of body every 50 ms, for ever: the deadline covers the
    whole exchange, the body's read included, so each attempt ends at the schema's timeout."""

    async def trickle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200)
        response.content_length = 1 << 20
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while True:
                await response.write(b"x")
                await asyncio.sleep(0.05)
        return response

    async with server(trickle) as url:
        await seed_queue(db, 1, 1)
        await seed_hook(db, 1, "joined", await seed_schema(db, url, timeout_ms=300))
        await start_worker(quick_retries=0)
        await platform.publish(event(1, "joined"))
        (dead,) = await platform.dead_letters(1)
    assert dead.headers[t.H_REASON] == "exhausted"
    assert "no response within 300 ms" in str(dead.headers[t.H_ERROR])


async def test_plain_http_is_warned_about_once_per_schema(
    db: Conn, platform: Platform, receiver: Receiver
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/one")))
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/two")))
    proc = await start_process()
    await wait_consuming(proc)
    for _ in range(3):
        await platform.publish(event(1, "joined"))
    await receiver.wait_for(6)
    proc.send_signal(signal.SIGTERM)
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    warnings = [orjson.loads(line) for line in err.splitlines() if b"plain http" in line]
    assert sorted(w["url"] for w in warnings) == [receiver.url("/one"), receiver.url("/two")]
    assert all(w["level"] == "warning" for w in warnings)


@pytest.mark.parametrize(
    "headers",
    [
        {" webhook-id": "forged"},  # a line that starts with a blank continues the one before
        {"webhook-id\t": "forged"},  # lenient parsers strip the blank: a second webhook-id
        {"": "x"},
        {"X-Note": "a\r\nwebhook-id: forged"},
        {"X-Note": "a\x7fb"},  # a control character (NUL: jsonb cannot hold it)
    ],
    ids=["leading-blank", "trailing-tab", "empty-name", "line-break", "control"],
)
async def test_a_static_header_no_request_can_carry_is_never_sent(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker,
    headers: dict[str, str],
) -> None:  # fmt: skip
    """The admin commands refuse such headers (worker/store/values.py), SQL does not: a row
    with one made the worker write a request whose headers were not ours to begin with (a
    folded line, a second webhook-id), or fail every attempt in aiohttp and count each one.
    Nothing is sent; the tiers, then exhausted naming the header, with no attempt counted."""
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/good")))
    bad = await seed_hook(
        db, 1, "joined", await seed_schema(db, receiver.url("/bad"), headers=headers)
    )
    await start_worker()
    sent = await platform.publish(event(1, "joined"))
    (letter,) = await platform.dead_letters(1)
    assert orjson.loads(letter.body)["id"] == orjson.loads(sent)["id"]
    assert letter.headers[t.H_REASON] == "exhausted"
    assert letter.headers[t.H_HOOK_ID] == bad
    assert letter.headers[t.H_ATTEMPTS] == 0
    assert "header" in str(letter.headers[t.H_ERROR])
    assert receiver.at("/bad") == []
    (good,) = receiver.at("/good")
    assert good.webhook_id.endswith(":1")
