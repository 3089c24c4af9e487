"""The token dependency (contract §9): `X-Webitel-Access: <token>` as the platform's clients
send it, or `Authorization: Bearer <token>`. The token is hashed at once and looked up by that
hash; its text goes nowhere else (no log line, no error, no repr)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from worker.api import rights
from worker.api.errors import ApiError, forbidden, not_found, unauthenticated
from worker.api.models import MAX_ID
from worker.api.rights import Caller, Need, Verdict
from worker.store import admin
from worker.store.admin import Conn, Row

# auto_error=False: a missing token is answered by us, in the §8 error shape.
_webitel = APIKeyHeader(name="X-Webitel-Access", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


READS = frozenset({"GET", "HEAD"})


async def connection(request: Request) -> AsyncIterator[Conn]:
    """One pooled connection per request; a change runs in one transaction (all or nothing).
    A read needs none: each of its statements sees what was committed before it, and the
    BEGIN and COMMIT would be two more round trips (12 % of the API's py-spy samples
    in the bench's mixed load)."""
    async with admin.refusals(), request.app.state.pool.acquire() as conn:
        if request.method in READS:
            yield conn
            return
        async with conn.transaction():
            yield conn


# scope="function": the transaction commits when the route returns, before the answer is sent,
# so a client that reads right after a change sees it.
DB = Annotated[Conn, Depends(connection, scope="function")]


@dataclass(frozen=True, repr=False)
class Asking(Caller):
    """The caller, with the queue its request's path names read in the same query as the
    token: one round trip tells who asks and what the rights are judged on."""

    path_queue_id: int | None = None
    path_queue: Row | None = None  # None: no such queue (or none named)


def _path_queue_id(request: Request) -> int | None:
    """The path's queue id when it is one (the route's own validation answers the rest).
    ASCII digits only: `str.isdigit` also passes "²", which `int` refuses."""
    raw = request.path_params.get("queue_id")
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and int(raw) <= MAX_ID:
        return int(raw)
    return None


async def caller(
    conn: DB,
    request: Request,
    webitel: Annotated[str | None, Depends(_webitel)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    token = webitel or (bearer.credentials if bearer else None)
    if not token:
        raise unauthenticated("a token is needed: X-Webitel-Access or Authorization: Bearer")
    queue_id = _path_queue_id(request)
    row = await admin.token_by_hash(conn, rights.digest(token.strip()), queue_id)
    if row is None:
        raise unauthenticated("the token is not valid (unknown or revoked)")
    return Asking(
        token_id=row["token_id"], name=row["token_name"], domain_id=row["token_domain_id"],
        admin=row["admin"], grants={int(q): bool(edit) for q, edit in row["grants"].items()},
        path_queue_id=queue_id, path_queue=row if row["id"] is not None else None,
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
    if isinstance(who, Asking) and who.path_queue_id == queue_id:
        row = who.path_queue
    else:
        row = await admin.queue_only(conn, queue_id)
    verdict = rights.on_queue(who, queue_id, row["domain_id"] if row else None, need)
    enforce(verdict, f"queue {queue_id}", f"{need.value} the hooks of queue {queue_id}")
    assert row is not None
    if need is Need.EDIT:
        await admin.act_as(conn, who.token_id)
    return row


__all__ = ["DB", "ApiError", "Who", "enforce", "queue_for"]
