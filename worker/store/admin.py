"""Writes outside the cache: what the worker and the admin commands change in the tables.

The admin queries take a connection opened by `session()`, which runs a command in one
transaction and turns the database's own refusals (a constraint, a trigger) into `Refused`,
worded as the database worded them. Deciding what may be done is the caller's business; the
database stays the last word on it (contract §2).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg

from schemas.queue_types import QUEUE_TYPES, events_fired, fires
from worker.addresses import private_literal
from worker.errors import is_transient
from worker.store.db import connect

if TYPE_CHECKING:
    Conn = asyncpg.Connection[Any]
else:
    Conn = asyncpg.Connection
Row = asyncpg.Record


class Refused(Exception):
    """The database or an admin rule said no; the message says why, in the admin's terms.

    `public` is the same reason worded for a caller of the API, who must not learn anything
    of another domain (contract §8); it is the message itself unless a rule says otherwise.
    """

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


class NotFound(Refused):
    """What was asked for does not exist (or, for an API caller, lies in another domain)."""


class Conflict(Refused):
    """It exists, and what was asked cannot be done while it is so (a schema in use)."""


async def disable_hook(dsn: str, hook_id: int) -> bool:
    """After a 410 Gone (contract §5). True when a hook was enabled and is now disabled."""
    conn = await connect(dsn)
    try:
        status: str = await conn.execute(
            "UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1 AND enabled", hook_id
        )
    finally:
        await conn.close()
    return status.endswith(" 1")


def db_words(exc: asyncpg.PostgresError) -> str:
    """The message, and its detail when there is one (which key), but never a whole failing
    row: a schema's row holds its secret."""
    message, detail = getattr(exc, "message", None) or str(exc), getattr(exc, "detail", None)
    if detail and detail.startswith("Failing row contains"):
        detail = None
    return " ".join((f"{message} ({detail})" if detail else message).split())


@contextlib.asynccontextmanager
async def session(dsn: str) -> AsyncIterator[Conn]:
    """One connection, one transaction: a command changes all it was asked to, or nothing."""
    async with refusals():
        conn = await connect(dsn)
        try:
            async with conn.transaction():
                yield conn
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def refusals() -> AsyncIterator[None]:
    """The database's own refusals (a constraint, a trigger) as `Refused`, in its words."""
    try:
        yield
    except Refused:
        raise
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
        raise Refused(f"database refused: {db_words(exc)}") from None
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        raise Refused("the database has no queue_hooks tables: run `queue-hooks migrate`") from None
    except asyncpg.PostgresError as exc:
        if is_transient(exc):
            raise  # the entry point says: cannot reach a service
        raise Refused(f"database error: {db_words(exc)}") from None


# -- queues ------------------------------------------------------------------------------------
_QUEUE = """
SELECT q.id, q.domain_id, q.name, q.type, q.variables,
       (SELECT count(*) FROM queue_hooks.hooks h WHERE h.queue_id = q.id) AS hooks
FROM queue_hooks.queues q
"""


async def queue(conn: Conn, queue_id: int) -> Row | None:
    return await conn.fetchrow(_QUEUE + " WHERE q.id = $1", queue_id)


_QUEUE_ONLY = "SELECT q.id, q.domain_id, q.name, q.type, q.variables FROM queue_hooks.queues q"


async def queue_only(conn: Conn, queue_id: int) -> Row | None:
    """The queue without its count of hooks: the API asks on every request (bench: a count
    of 100,000 hooks was most of a search's time)."""
    return await conn.fetchrow(_QUEUE_ONLY + " WHERE q.id = $1", queue_id)


async def queues(conn: Conn, domain: int | None, offset: int, limit: int) -> list[Row]:
    return await conn.fetch(
        _QUEUE + " WHERE $1::bigint IS NULL OR q.domain_id = $1 ORDER BY q.id OFFSET $2 LIMIT $3",
        domain, offset, limit,
    )  # fmt: skip


async def count_queues(conn: Conn, domain: int | None) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM queue_hooks.queues WHERE $1::bigint IS NULL OR domain_id = $1",
        domain,
    )
    return n


async def add_queue(
    conn: Conn, queue_id: int, domain: int, name: str, queue_type: int, variables: dict[str, str]
) -> None:
    await conn.execute(
        "INSERT INTO queue_hooks.queues (id, domain_id, name, type, variables)"
        " VALUES ($1, $2, $3, $4, $5)",
        queue_id, domain, name, queue_type, variables,
    )  # fmt: skip


# -- schemas -----------------------------------------------------------------------------------
_SCHEMA = """
SELECT s.id, s.domain_id, s.name, s.url, s.headers, s.timeout_ms, s.secret, s.max_per_second,
       s.previous_secret IS NOT NULL AND s.previous_secret_until > now() AS rotating,
       s.previous_secret_until,
       (SELECT count(*) FROM queue_hooks.hooks h WHERE h.schema_id = s.id) AS hooks
FROM queue_hooks.schemas s
"""
# Every search folds case in every alphabet, whatever the database's locale (0005's collation:
# a database made with the C locale folds ASCII only, and queue names are often Cyrillic).
FOLDED = "COLLATE queue_hooks.folded"
# Part of the name, case-insensitive: the platform's schema picker is also a search box.
_SEARCH = f"($1::text IS NULL OR position(lower($1 {FOLDED}) IN lower(s.name {FOLDED})) > 0)"
_IN_DOMAIN = "($2::bigint IS NULL OR s.domain_id = $2)"


async def schema(conn: Conn, schema_id: int) -> Row | None:
    return await conn.fetchrow(_SCHEMA + " WHERE s.id = $1", schema_id)


async def schemas(
    conn: Conn, search: str | None, domain: int | None, offset: int = 0, limit: int = 1000
) -> list[Row]:
    """Matching schemas, those whose whole name matches first (lower(name) = search)."""
    return await conn.fetch(
        f"{_SCHEMA} WHERE {_SEARCH} AND {_IN_DOMAIN}"
        f" ORDER BY lower(s.name {FOLDED}) = lower($1 {FOLDED}) DESC, s.id OFFSET $3 LIMIT $4",
        search, domain, offset, limit,
    )  # fmt: skip


async def count_schemas(conn: Conn, search: str | None, domain: int | None) -> int:
    n: int = await conn.fetchval(
        f"SELECT count(*) FROM queue_hooks.schemas s WHERE {_SEARCH} AND {_IN_DOMAIN}",
        search, domain,
    )  # fmt: skip
    return n


async def add_schema(
    conn: Conn, domain: int, name: str, url: str, timeout_ms: int,
    headers: dict[str, str], secret: str | None, max_per_second: float | None = None,
) -> int:  # fmt: skip
    schema_id: int = await conn.fetchval(
        "INSERT INTO queue_hooks.schemas"
        " (domain_id, name, url, timeout_ms, headers, secret, max_per_second)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        domain, name, url, timeout_ms, headers, secret, max_per_second,
    )  # fmt: skip
    return schema_id


_EDITABLE = ("name", "url", "timeout_ms", "headers", "max_per_second")


async def edit_schema(conn: Conn, schema_id: int, changes: dict[str, Any]) -> None:
    columns = [c for c in _EDITABLE if c in changes]
    sets = ", ".join(f"{c} = ${n}" for n, c in enumerate(columns, start=2))
    await conn.execute(
        f"UPDATE queue_hooks.schemas SET {sets} WHERE id = $1",
        schema_id, *(changes[c] for c in columns),
    )  # fmt: skip


async def rotate_secret(conn: Conn, schema_id: int, secret: str, grace: float) -> datetime | None:
    """The new secret signs from now on; the old one also signs for `grace` seconds (none
    if there was no old one). Returns until when the old one still signs."""
    until: datetime | None = await conn.fetchval(
        """
        UPDATE queue_hooks.schemas
        SET previous_secret = CASE WHEN $3::float8 > 0 THEN secret END,
            previous_secret_until = CASE WHEN $3::float8 > 0 AND secret IS NOT NULL
                                         THEN now() + make_interval(secs => $3::float8) END,
            secret = $2
        WHERE id = $1
        RETURNING previous_secret_until
        """,
        schema_id, secret, grace,
    )  # fmt: skip
    return until


async def hooks_of_schema(conn: Conn, schema_id: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM queue_hooks.hooks WHERE schema_id = $1 ORDER BY id", schema_id
    )
    return [r["id"] for r in rows]


async def delete_schema(conn: Conn, schema_id: int) -> None:
    await conn.execute("DELETE FROM queue_hooks.schemas WHERE id = $1", schema_id)


# -- hooks -------------------------------------------------------------------------------------
_HOOK_COLUMNS = """
SELECT h.id, h.queue_id, h.event, h.schema_id, h.enabled, h.created_at, h.updated_at,
       s.name AS schema_name, q.domain_id, q.type AS queue_type, q.name AS queue_name,
       h.updated_by, t.name AS updated_by_name
"""
_HOOK_JOINS = """
JOIN queue_hooks.schemas s ON s.id = h.schema_id
JOIN queue_hooks.queues q ON q.id = h.queue_id
LEFT JOIN queue_hooks.tokens t ON t.id = h.updated_by
"""
_HOOK = _HOOK_COLUMNS + "FROM queue_hooks.hooks h" + _HOOK_JOINS
_FILTER = """
WHERE h.queue_id = $1 AND ($2::text IS NULL OR h.event = $2)
  AND ($3::boolean IS NULL OR h.enabled = $3)
"""


async def hooks(
    conn: Conn, queue_id: int, event: str | None, enabled: bool | None, offset: int, limit: int
) -> list[Row]:
    return await conn.fetch(
        _HOOK + _FILTER + " ORDER BY h.id OFFSET $4 LIMIT $5",
        queue_id, event, enabled, offset, limit,
    )  # fmt: skip


async def count_hooks(conn: Conn, queue_id: int, event: str | None, enabled: bool | None) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM queue_hooks.hooks h" + _FILTER, queue_id, event, enabled
    )
    return n


async def hooks_by_id(conn: Conn, ids: Sequence[int], lock: bool = False) -> list[Row]:
    """`lock`: for a change computed from what is read (a PATCH writes the keys it was not
    given as they were): the rows stay as read until the transaction ends, so a change
    committed meanwhile (a switch flipped) is waited for and read, not overwritten."""
    locking = " FOR UPDATE OF h" if lock else ""
    return await conn.fetch(
        _HOOK + " WHERE h.id = ANY($1::bigint[]) ORDER BY h.id" + locking, list(ids)
    )


async def same_hook(conn: Conn, queue_id: int, event: str, schema_id: int) -> int | None:
    """The hook that already calls this schema on this event of this queue, if any."""
    hook_id: int | None = await conn.fetchval(
        "SELECT id FROM queue_hooks.hooks WHERE queue_id = $1 AND event = $2 AND schema_id = $3",
        queue_id, event, schema_id,
    )  # fmt: skip
    return hook_id


async def add_hook(conn: Conn, queue_id: int, event: str, schema_id: int, enabled: bool) -> int:
    hook_id: int = await conn.fetchval(
        "INSERT INTO queue_hooks.hooks (queue_id, event, schema_id, enabled)"
        " VALUES ($1, $2, $3, $4) RETURNING id",
        queue_id, event, schema_id, enabled,
    )  # fmt: skip
    return hook_id


async def edit_hook(conn: Conn, hook_id: int, event: str, schema_id: int) -> None:
    await conn.execute(
        "UPDATE queue_hooks.hooks SET event = $2, schema_id = $3 WHERE id = $1",
        hook_id, event, schema_id,
    )  # fmt: skip


async def set_enabled(conn: Conn, ids: Sequence[int], enabled: bool) -> list[int]:
    """Returns the ids that changed (the others were already so)."""
    rows = await conn.fetch(
        "UPDATE queue_hooks.hooks SET enabled = $2"
        " WHERE id = ANY($1::bigint[]) AND enabled <> $2 RETURNING id",
        list(ids), enabled,
    )  # fmt: skip
    return sorted(r["id"] for r in rows)


async def delete_hooks(conn: Conn, ids: Sequence[int]) -> list[int]:
    rows = await conn.fetch(
        "DELETE FROM queue_hooks.hooks WHERE id = ANY($1::bigint[]) RETURNING id", list(ids)
    )
    return sorted(r["id"] for r in rows)


async def set_hook(conn: Conn, hook_id: int, event: str, schema_id: int, enabled: bool) -> Row:
    """The hook as it now is (as `hooks_by_id` reads it, `updated_by` as the trigger set it),
    from the same statement that changed it."""
    row: Row | None = await conn.fetchrow(
        "WITH h AS (UPDATE queue_hooks.hooks SET event = $2, schema_id = $3, enabled = $4"
        " WHERE id = $1 RETURNING *)" + _HOOK_COLUMNS + "FROM h" + _HOOK_JOINS,
        hook_id, event, schema_id, enabled,
    )  # fmt: skip
    if row is None:
        raise NotFound(f"no hook {hook_id}: deleted meanwhile")
    return row


async def delete_queue_hooks(conn: Conn, queue_id: int, ids: Sequence[int]) -> list[Row]:
    """Deletes these hooks of this queue, all or none: the rows as they were (as `hooks_by_id`
    reads them), from the statement that deleted them. One that is not a hook of the queue,
    or that someone else deleted after the caller read it, is named by `NotFound`; the
    caller's transaction then undoes the rest (a delete that read a row and found it gone when
    it came to delete it must not answer that it deleted it)."""
    wanted = sorted(set(ids))
    rows = await conn.fetch(
        "WITH h AS (DELETE FROM queue_hooks.hooks WHERE id = ANY($1::bigint[]) AND queue_id = $2"
        " RETURNING *)" + _HOOK_COLUMNS + "FROM h" + _HOOK_JOINS + " ORDER BY h.id",
        wanted, queue_id,
    )  # fmt: skip
    missing = sorted(set(wanted) - {r["id"] for r in rows})
    if missing:
        noun = "hook" if len(missing) == 1 else "hooks"
        raise NotFound(f"no {noun} {some_ids(missing)} in queue {queue_id}; none deleted")
    return rows


async def act_as(conn: Conn, token_id: int) -> None:
    """Every hook this transaction writes records the token as `updated_by` (0003's trigger)."""
    await conn.execute("SELECT set_config('queue_hooks.actor', $1, true)", str(token_id))


# -- the API's search of a queue's hooks (contract §8) -----------------------------------------
SORTS = {"id": "h.id", "event": "h.event", "schema": "s.name", "enabled": "h.enabled"}


_HOOK_SEARCH = f"AND (h.event ILIKE $6 OR s.name {FOLDED} ILIKE $6)"


def like_pattern(q: str) -> str:
    """The platform's search text as an ILIKE pattern: a substring, `*` for any run."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped.replace("*", "%") + "%"


async def search_hooks(
    conn: Conn, queue_id: int, *, q: str | None = None, ids: Sequence[int] = (),
    schema_ids: Sequence[int] = (), events: Sequence[str] = (), enabled: bool | None = None,
    sort: str = "id", descending: bool = False, offset: int = 0, limit: int = 40,
) -> list[Row]:  # fmt: skip
    """One page of a queue's hooks. The page's ids are found on `hooks` alone (and the
    schemas only when the search or the order needs their names), so a deep page is a range
    of the (queue_id, id) index, not a join of every row before it."""
    direction = "DESC" if descending else "ASC"
    order = f"{SORTS[sort]} {direction}" + ("" if sort == "id" else f", h.id {direction}")
    names = q is not None or sort == "schema"
    pick = f"""
        SELECT h.id FROM queue_hooks.hooks h
        {"JOIN queue_hooks.schemas s ON s.id = h.schema_id" if names else ""}
        WHERE h.queue_id = $1
          AND (cardinality($2::bigint[]) = 0 OR h.id = ANY($2))
          AND (cardinality($3::bigint[]) = 0 OR h.schema_id = ANY($3))
          AND (cardinality($4::text[]) = 0 OR h.event = ANY($4))
          AND ($5::boolean IS NULL OR h.enabled = $5)
          {_HOOK_SEARCH if q is not None else "AND $6::text IS NULL"}
        ORDER BY {order} OFFSET $7 LIMIT $8
    """
    query = f"""
        WITH page AS ({pick})
        {_HOOK_COLUMNS} FROM page JOIN queue_hooks.hooks h ON h.id = page.id {_HOOK_JOINS}
        ORDER BY {order}
    """
    return await conn.fetch(
        query, queue_id, list(ids), list(schema_ids), list(events), enabled,
        like_pattern(q) if q is not None else None, offset, limit,
    )  # fmt: skip


# -- the rules: one place for the command line and the API alike -------------------------------
async def require_queue(conn: Conn, queue_id: int) -> Row:
    row = await queue(conn, queue_id)
    if row is None:
        raise NotFound(f"no queue {queue_id}")
    return row


async def require_schema(conn: Conn, schema_id: int) -> Row:
    row = await schema(conn, schema_id)
    if row is None:
        raise NotFound(f"no schema {schema_id}")
    return row


async def require_hooks(conn: Conn, ids: Sequence[int]) -> list[Row]:
    """All of them or an error naming the missing ones (then nothing is changed)."""
    rows = await hooks_by_id(conn, ids)
    missing = sorted(set(ids) - {r["id"] for r in rows})
    if missing:
        noun = "hook" if len(missing) == 1 else "hooks"
        raise NotFound(f"no {noun} {some_ids(missing)}; nothing changed")
    return rows


def some_ids(ids: Sequence[int], shown: int = 10) -> str:
    """Ids for a one-line message: the first ten, then how many more (a schema used by
    thousands of hooks, a delete of thousands of ids, must not make a line of kilobytes)."""
    head = ", ".join(map(str, ids[:shown]))
    rest = len(ids) - shown
    return head if rest <= 0 else f"{head} and {rest} more"


def check_fires(queue: Row, event: str) -> None:
    """Contract §4: a hook only for an event its queue's type fires."""
    if not fires(queue["type"], event):
        raise Refused(
            f'queue {queue["id"]} ({QUEUE_TYPES[queue["type"]]}) never fires "{event}"; '
            f"it fires: {', '.join(events_fired(queue['type']))}"
        )


def check_domain(queue: Row, schema: Row) -> None:
    """Contract §2: a hook calls only a schema of its queue's domain. An API caller is told
    only that the schema is not one of its domain (never which domain it is in)."""
    if schema["domain_id"] != queue["domain_id"]:
        raise Refused(
            f"schema {schema['id']} {schema['name']!r} is in domain {schema['domain_id']}, but "
            f"queue {queue['id']} is in domain {queue['domain_id']}: a hook may only call a "
            "schema of its queue's domain",
            public=f"no schema {schema['id']} in this domain",
        )


async def check_unique(conn: Conn, queue: Row, event: str, schema: Row, hook_id: int = 0) -> None:
    same = await same_hook(conn, queue["id"], event, schema["id"])
    if same is not None and same != hook_id:
        raise Refused(
            f'hook {same} already calls schema {schema["id"]} {schema["name"]!r} on "{event}" '
            f"of queue {queue['id']}"
        )


async def check_hook(conn: Conn, queue: Row, event: str, schema: Row, hook_id: int = 0) -> None:
    """Everything a new or changed hook must satisfy, worded before the database says it."""
    check_fires(queue, event)
    check_domain(queue, schema)
    await check_unique(conn, queue, event, schema, hook_id)


def check_target(url: str, allow_private: bool) -> None:
    """Issue 12 defect 6: a schema URL whose host is a private IP literal is refused at save
    time, by the same test the delivery guard applies (worker/addresses.py)."""
    if allow_private:
        return
    address = private_literal(urlsplit(url).hostname or "")
    if address is not None:
        raise Refused(
            f"URL {url!r}: {address} is not a public address (loopback, private, link-local "
            "or metadata): deliveries to it are refused; set "
            "QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true to allow private targets"
        )


async def check_unused(conn: Conn, schema_row: Row) -> None:
    used = await hooks_of_schema(conn, schema_row["id"])
    if used:
        it = "it" if len(used) == 1 else "them"
        noun = "hook" if len(used) == 1 else "hooks"
        raise Conflict(
            f"schema {schema_row['id']} {schema_row['name']!r} is used by {noun} "
            f"{some_ids(used)}: delete {it} or point {it} at another schema first "
            "(hooks delete / hooks edit ID --schema ...)"
        )


# -- tokens and grants (contract §9) -------------------------------------------------------------
_GRANTS = """coalesce((SELECT jsonb_object_agg(g.queue_id::text, g.edit) FROM queue_hooks.grants g
                 WHERE g.token_id = t.id), '{}'::jsonb) AS grants"""
_TOKEN = f"""
SELECT t.id, t.domain_id, t.name, t.admin, t.created_at, t.revoked_at, {_GRANTS}
FROM queue_hooks.tokens t
"""
# The API's: the token (its columns as token_*) and the queue a request names, whose columns
# keep their names, so that the row serves as the queue's (`queue_only`) when there is one.
_ASKING = f"""
SELECT t.id AS token_id, t.domain_id AS token_domain_id, t.name AS token_name, t.admin,
       {_GRANTS}, q.id, q.domain_id, q.name, q.type, q.variables
FROM queue_hooks.tokens t LEFT JOIN queue_hooks.queues q ON q.id = $2
WHERE t.hash = $1 AND t.revoked_at IS NULL
"""


async def add_token(conn: Conn, domain: int, name: str, admin: bool, digest: bytes) -> int:
    token_id: int = await conn.fetchval(
        "INSERT INTO queue_hooks.tokens (domain_id, name, admin, hash) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        domain, name, admin, digest,
    )  # fmt: skip
    return token_id


async def token_by_hash(conn: Conn, digest: bytes, queue_id: int | None = None) -> Row | None:
    """The live token with this hash (an equality probe of a unique index) as `token_id`,
    `token_domain_id`, `token_name`, `admin`, `grants`; and the columns of `queue_only` for
    `queue_id` (all null when there is no such queue or none was asked): who asks and what
    they ask about in one round trip, as the API needs on every request."""
    return await conn.fetchrow(_ASKING, digest, queue_id)


async def tokens(conn: Conn) -> list[Row]:
    return await conn.fetch(_TOKEN + " ORDER BY t.id")


async def require_token(conn: Conn, token_id: int) -> Row:
    row: Row | None = await conn.fetchrow(_TOKEN + " WHERE t.id = $1", token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    return row


async def revoke_token(conn: Conn, token_id: int) -> bool:
    """True when it was live and is now revoked."""
    await require_token(conn, token_id)
    status: str = await conn.execute(
        "UPDATE queue_hooks.tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        token_id,
    )
    return status.endswith(" 1")


async def grant(conn: Conn, token_id: int, queue_id: int, edit: bool) -> Row:
    """Read or edit on one queue of the token's own domain (a grant never crosses domains)."""
    token, queue_row = await require_token(conn, token_id), await require_queue(conn, queue_id)
    if token["domain_id"] != queue_row["domain_id"]:
        raise Refused(
            f"token {token_id} is of domain {token['domain_id']}, queue {queue_id} of domain "
            f"{queue_row['domain_id']}: a token acts in its own domain only"
        )
    await conn.execute(
        "INSERT INTO queue_hooks.grants (token_id, queue_id, edit) VALUES ($1, $2, $3)"
        " ON CONFLICT (token_id, queue_id) DO UPDATE SET edit = EXCLUDED.edit",
        token_id, queue_id, edit,
    )  # fmt: skip
    return token


async def revoke_grant(conn: Conn, token_id: int, queue_id: int) -> bool:
    await require_token(conn, token_id)
    status: str = await conn.execute(
        "DELETE FROM queue_hooks.grants WHERE token_id = $1 AND queue_id = $2", token_id, queue_id
    )
    return status.endswith(" 1")


async def readable_queues(
    conn: Conn, domain: int, grants: Sequence[int] | None, q: str | None, offset: int, limit: int
) -> list[Row]:
    """The queues of a domain (only those listed in `grants` unless it is None), by id."""
    return await conn.fetch(
        _QUEUE_ONLY + " WHERE q.domain_id = $1 AND ($2::bigint[] IS NULL OR q.id = ANY($2))"
        f" AND ($3::text IS NULL OR q.name {FOLDED} ILIKE $3) ORDER BY q.id OFFSET $4 LIMIT $5",
        domain, None if grants is None else list(grants),
        like_pattern(q) if q is not None else None, offset, limit,
    )  # fmt: skip


async def domain_schemas(
    conn: Conn, domain: int, q: str | None, offset: int, limit: int
) -> list[Row]:
    return await conn.fetch(
        f"{_SCHEMA} WHERE s.domain_id = $1 AND ($2::text IS NULL OR s.name {FOLDED} ILIKE $2)"
        " ORDER BY s.id OFFSET $3 LIMIT $4",
        domain, like_pattern(q) if q is not None else None, offset, limit,
    )  # fmt: skip
