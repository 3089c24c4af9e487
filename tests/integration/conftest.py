"""The integration tests run against the real RabbitMQ and PostgreSQL, never mocks; and a
real `queue-hooks api` process for the API's tests, with tokens made as the CLI makes them."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.support.cli import NO_DOTENV
from tests.support.helpers import Conn
from worker.api import rights
from worker.store import admin

if "QUEUE_HOOKS_AMQP_URL" not in os.environ or "QUEUE_HOOKS_DATABASE_URL" not in os.environ:
    raise pytest.UsageError(
        "the integration tests need the real services: run `make test` (it starts them), or"
        " set QUEUE_HOOKS_AMQP_URL and QUEUE_HOOKS_DATABASE_URL; `make test-unit` needs none"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
async def api_url(database: str) -> AsyncIterator[str]:
    """One API process for the session: it is stateless, every test seeds its own rows."""
    port = free_port()
    env = {
        **os.environ,
        "QUEUE_HOOKS_API_PORT": str(port),
        "QUEUE_HOOKS_LOG_LEVEL": "warning",
        "QUEUE_HOOKS_DATABASE_URL": database,
        "QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS": "false",
    }
    env.pop("QUEUE_HOOKS_SECRET_KEY", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "api", env=env, cwd=NO_DOTENV,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.returncode is not None:
                raise RuntimeError(f"queue-hooks api exited {proc.returncode}")
            try:
                await client.get(url + "/api/openapi.json")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    try:
        yield url + "/api"
    finally:
        proc.terminate()
        _out, err = await proc.communicate()
        assert b"Traceback" not in err, err.decode()


MakeToken = Callable[..., Awaitable[tuple[int, str]]]


@pytest.fixture
def make_token(db: Conn) -> MakeToken:
    """A token as `tokens add` makes it; grants as `grant` gives them: {queue: "read"|"edit"}."""

    async def make(
        domain: int = 1, admin_: bool = False, grants: dict[int, str] | None = None,
        name: str = "t",
    ) -> tuple[int, str]:  # fmt: skip
        token = rights.new_token()
        async with admin.session(os.environ["QUEUE_HOOKS_DATABASE_URL"]) as conn:
            token_id = await admin.add_token(conn, domain, name, admin_, rights.digest(token))
            for queue_id, right in (grants or {}).items():
                await admin.grant(conn, token_id, queue_id, right == "edit")
        return token_id, token

    return make


def client(api_url: str, token: str | None, bearer: bool = False) -> httpx.AsyncClient:
    headers: dict[str, str] = {}
    if token is not None:
        headers = {"Authorization": f"Bearer {token}"} if bearer else {"X-Webitel-Access": token}
    return httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10)


def is_error(response: httpx.Response, code: int) -> str:
    """The §8 error object with this status; returns its detail."""
    assert response.status_code == code, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"id", "code", "status", "detail"}, body
    assert body["code"] == code and isinstance(body["id"], str) and "." in body["id"]
    assert "Traceback" not in body["detail"]
    detail: str = body["detail"]
    return detail
