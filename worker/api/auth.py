"""The token dependency (contract §9): `X-Webitel-Access: <token>` as the platform's clients
send it, or `Authorization: Bearer <token>`. The token is hashed at once and looked up by that
hash; its text goes nowhere else (no log line, no error, no repr)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from worker.api import rights
from worker.api.errors import ApiError, forbidden, not_found, unauthenticated
from worker.api.rights import Caller, Need, Verdict
from worker.store import admin
from worker.store.admin import Conn

# auto_error=False: a missing token is answered by us, in the §8 error shape.
_webitel = APIKeyHeader(name="X-Webitel-Access", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


READS = frozenset({"GET", "HEAD"})


async def connection(request: Request) -> AsyncIterator[Conn]:
    """One pooled connection per request; a change runs in one transaction (all or nothing).
    A read needs none: each of its statements sees what was committed before it, and the
    BEGIN and COMMIT would be two more round trips (bench: a fifth of a search's time)."""
    async with admin.refusals(), request.app.state.pool.acquire() as conn:
        if request.method in READS:
            yield conn
            return
        async with conn.transaction():
            yield conn


# scope="function": the transaction commits when the route returns, before the answer is sent,
# so a client that reads right after a change sees it.
DB = Annotated[Conn, Depends(connection, scope="function")]


async def caller(
    conn: DB,
    webitel: Annotated[str | None, Depends(_webitel)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    token = webitel or (bearer.credentials if bearer else None)
    if not token:
        raise unauthenticated("a token is needed: X-Webitel-Access or Authorization: Bearer")
    row = await admin.token_by_hash(conn, rights.digest(token.strip()))
    if row is None:
        raise unauthenticated("the token is not valid (unknown or revoked)")
    return Caller(
        token_id=row["id"], name=row["name"], domain_id=row["domain_id"], admin=row["admin"],
        grants={int(q): bool(edit) for q, edit in row["grants"].items()},
    )  # fmt: skip


Who = Annotated[Caller, Depends(caller)]


def enforce(verdict: Verdict, what: str, doing: str) -> None:
    """HIDDEN and missing look the same (404); FORBIDDEN says what right is lacking."""
    if verdict is Verdict.HIDDEN:
        raise not_found(what)
    if verdict is Verdict.FORBIDDEN:
        raise forbidden(f"this token may not {doing}")


async def queue_for(conn: Conn, who: Caller, queue_id: int, need: Need) -> admin.Row:
    """The queue, when this token may `need` it."""
    row = await admin.queue_only(conn, queue_id)
    verdict = rights.on_queue(who, queue_id, row["domain_id"] if row else None, need)
    enforce(verdict, f"queue {queue_id}", f"{need.value} the hooks of queue {queue_id}")
    assert row is not None
    if need is Need.EDIT:
        await admin.act_as(conn, who.token_id)
    return row


__all__ = ["DB", "ApiError", "Who", "enforce", "queue_for"]
