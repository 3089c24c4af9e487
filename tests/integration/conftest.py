"""The integration tests run against the real RabbitMQ and PostgreSQL, never mocks; and a
real `queue-hooks api` process for the API's tests, with tokens made as the CLI makes them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support.helpers import Conn
from tests.support.processes import api_process
from worker.api import rights
from worker.broker.consumers import SyncFirstChannel
from worker.store import admin

if "QUEUE_HOOKS_AMQP_URL" not in os.environ or "QUEUE_HOOKS_DATABASE_URL" not in os.environ:
    raise pytest.UsageError(
        "the integration tests need the real services: run `make test` (it starts them), or"
        " set QUEUE_HOOKS_AMQP_URL and QUEUE_HOOKS_DATABASE_URL; `make test-unit` needs none"
    )


@pytest.fixture(scope="session")
async def api_url(database: str) -> AsyncIterator[str]:
    """One API process for the session: it is stateless, every test seeds its own rows."""
    async with api_process(database) as url:
        yield url + "/api"


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


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per consumer task that ran: aiormq hangs `_on_consumer_done` on each."""
    done: list[int] = []
    original = SyncFirstChannel._on_consumer_done

    def counting(task: asyncio.Task[Any]) -> None:
        done.append(1)
        original(task)

    monkeypatch.setattr(SyncFirstChannel, "_on_consumer_done", staticmethod(counting))
    return done
