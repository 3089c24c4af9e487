"""The demo receiver of `make run`: prints each delivery and whether its signature holds."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def _handler(secret: str | None) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    verifier = Webhook(secret) if secret else None

    async def receive(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if verifier is None:
            verdict = "not checked (no --secret)"
        elif "webhook-signature" not in headers:
            verdict = "MISSING"
        else:
            try:
                verifier.verify(body, headers)
                verdict = "valid"
            except WebhookVerificationError as exc:
                verdict = f"INVALID ({exc})"
        try:
            shown = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            shown = body.decode(errors="replace")
        print(
            f"--- {request.method} {request.path}  webhook-id={headers.get('webhook-id')}"
            f"  attempt={headers.get('queue-hooks-attempt')}  signature: {verdict}\n{shown}",
            flush=True,
        )
        return web.Response(status=204)

    return receive


async def serve_demo(host: str, port: int, secret: str | None) -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", _handler(secret))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"demo receiver listening on http://{host}:{port}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(asyncio.CancelledError):
        await stop.wait()
    await runner.cleanup()
