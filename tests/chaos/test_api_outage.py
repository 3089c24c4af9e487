"""`queue-hooks api` while its PostgreSQL is down: every call a 503 in the §8 shape (a warning
in the log, no traceback), `/readyz` 503 with its reason, `/healthz` still 200; once the
database is back, the pool's new connections reach it and everything answers again.

With a multi-host URL the pool does the same across a failover: a connection lost with the
old primary is dropped, and the next one is made with the whole URL, which
(`target_session_attrs=read-write`) reaches the new primary (docs/cluster.md)."""

from __future__ import annotations

import httpx

from tests.chaos.harness import Services
from tests.support.helpers import seed_hook, seed_queue, seed_schema, until
from tests.support.processes import api_process
from worker.api import rights
from worker.store import admin

HOOK = "/api/call_center/queues/1/hooks/{}"


async def seed(database: str) -> tuple[int, str]:
    """Queue 1 with one hook; an admin token."""
    token = rights.new_token()
    async with admin.session(database) as conn:
        await conn.execute(
            "TRUNCATE queue_hooks.hooks, queue_hooks.schemas, queue_hooks.queues,"
            " queue_hooks.tokens RESTART IDENTITY CASCADE"
        )
        await seed_queue(conn, 1, 1)
        hook = await seed_hook(conn, 1, "joined", await seed_schema(conn, "https://crm.example/"))
        await admin.add_token(conn, 1, "ops", True, rights.digest(token))
    return hook, token


def is_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json() == {
        "id": "api.unavailable", "code": 503, "status": "Service Unavailable",
        "detail": "the database cannot be reached; try again",
    }  # fmt: skip


async def test_api_answers_503_while_postgresql_is_down_then_recovers(
    services: Services, database: str
) -> None:
    hook, token = await seed(database)
    async with (
        api_process(database) as url,
        httpx.AsyncClient(base_url=url, headers={"X-Webitel-Access": token}, timeout=10) as c,
    ):
        assert (await c.get(HOOK.format(hook))).status_code == 200
        assert (await c.get("/readyz")).status_code == 200
        await services.stop("postgres")
        try:
            is_unavailable(await c.get(HOOK.format(hook)))
            is_unavailable(await c.patch(HOOK.format(hook), json={"enabled": False}))
            is_unavailable(await c.get("/api/call_center/queues"))
            ready = await c.get("/readyz")
            assert ready.status_code == 503
            assert ready.text.startswith("not ready: postgresql down: ")
            assert ready.text.count("\n") == 1 and token not in ready.text
            assert (await c.get("/healthz")).status_code == 200
        finally:
            await services.start()

        async def ready_again() -> bool:
            return (await c.get("/readyz")).status_code == 200

        await until(ready_again, within=30)
        patched = await c.patch(HOOK.format(hook), json={"enabled": False})
        assert patched.status_code == 200 and patched.json()["enabled"] is False
        assert (await c.get(HOOK.format(hook))).json()["enabled"] is False
