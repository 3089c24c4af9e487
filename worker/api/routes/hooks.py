"""A queue's hooks: search, create, read, update, patch, delete, delete several."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from schemas.queue_types import EventName
from worker.api import models as m
from worker.api.auth import DB, Who, queue_for
from worker.api.errors import bad_request, not_found
from worker.api.params import Enabled, PageNo, PageSize, PathId, QueryIds
from worker.api.rights import Need
from worker.store import admin
from worker.store.admin import Conn, Row

router = APIRouter(prefix="/call_center/queues/{queue_id}/hooks", tags=["QueueHookService"])

QueueId = PathId
HookId = PathId
Ids = QueryIds
SORT = r"^[+\- ]?(id|event|schema|enabled)$"  # `+id` arrives as ` id` when `+` is not escaped


def hook_out(r: Row) -> m.QueueHook:
    by = r["updated_by"]
    return m.QueueHook(
        id=r["id"], event=r["event"], enabled=r["enabled"], queue_id=r["queue_id"],
        schema_=m.Lookup(id=str(r["schema_id"]), name=r["schema_name"]),
        updated_at=r["updated_at"],
        updated_by=None if by is None else m.Lookup(id=str(by), name=r["updated_by_name"]),
    )  # fmt: skip


async def _one(conn: Conn, queue_id: int, hook_id: int, lock: bool = False) -> Row:
    rows = await admin.hooks_by_id(conn, (hook_id,), lock)
    if not rows or rows[0]["queue_id"] != queue_id:
        raise not_found(f"hook {hook_id} of queue {queue_id}")
    return rows[0]


@router.get("", response_model=m.HookPage, operation_id="SearchQueueHook")
async def search(
    conn: DB, who: Who, queue_id: QueueId,
    page: PageNo = 1,
    size: PageSize = 40,
    q: Annotated[str | None, Query(max_length=200)] = None,
    sort: Annotated[str, Query(pattern=SORT)] = "+id",
    fields: Annotated[list[str] | None, Query()] = None,
    id: Ids = [],  # noqa: B006 - the platform's parameter name; FastAPI copies defaults
    schema_id: Ids = [],  # noqa: B006
    event: Annotated[list[EventName], Query()] = [],  # noqa: B006
    enabled: Enabled = None,
) -> m.HookPage:  # fmt: skip
    await queue_for(conn, who, queue_id, Need.READ)
    rows = await admin.search_hooks(
        conn, queue_id, q=q or None, ids=id, schema_ids=schema_id, events=event,
        enabled=enabled, sort=sort.lstrip("+- "), descending=sort.startswith("-"),
        offset=(page - 1) * size, limit=size + 1,
    )  # fmt: skip
    return m.HookPage(items=[hook_out(r) for r in rows[:size]], next=len(rows) > size)


@router.post("", response_model=m.QueueHook, operation_id="CreateQueueHook")
async def create(conn: DB, who: Who, queue_id: QueueId, body: m.HookCreate) -> m.QueueHook:
    queue = await queue_for(conn, who, queue_id, Need.EDIT)
    schema = await _schema_of(conn, queue, body.schema_.id)
    await admin.check_hook(conn, queue, body.event, schema)
    hook_id = await admin.add_hook(conn, queue_id, body.event, schema["id"], body.enabled)
    return hook_out(await _one(conn, queue_id, hook_id))


@router.get("/{id}", response_model=m.QueueHook, operation_id="ReadQueueHook")
async def read(conn: DB, who: Who, queue_id: QueueId, id: HookId) -> m.QueueHook:
    await queue_for(conn, who, queue_id, Need.READ)
    return hook_out(await _one(conn, queue_id, id))


@router.put("/{id}", response_model=m.QueueHook, operation_id="UpdateQueueHook")
async def update(
    conn: DB, who: Who, queue_id: QueueId, id: HookId, body: m.HookUpdate
) -> m.QueueHook:
    queue = await queue_for(conn, who, queue_id, Need.EDIT)
    hook = await _one(conn, queue_id, id, lock=True)
    enabled = hook["enabled"] if body.enabled is None else body.enabled
    return await _change(conn, queue, hook, body.event, body.schema_.id, enabled)


@router.patch("/{id}", response_model=m.QueueHook, operation_id="PatchQueueHook")
async def patch(
    conn: DB, who: Who, queue_id: QueueId, id: HookId, body: m.HookPatch
) -> m.QueueHook:
    queue = await queue_for(conn, who, queue_id, Need.EDIT)
    hook = await _one(conn, queue_id, id, lock=True)
    given = body.given()
    event = body.event if "event" in given and body.event else hook["event"]
    schema_id = body.schema_.id if "schema_" in given and body.schema_ else hook["schema_id"]
    enabled = body.enabled if "enabled" in given and body.enabled is not None else hook["enabled"]
    if (event, schema_id, enabled) == (hook["event"], hook["schema_id"], hook["enabled"]):
        return hook_out(hook)  # nothing changes: neither updated_at nor updated_by
    return await _change(conn, queue, hook, event, schema_id, enabled)


@router.delete("/{id}", response_model=m.QueueHook, operation_id="DeleteQueueHook")
async def delete(conn: DB, who: Who, queue_id: QueueId, id: HookId) -> m.QueueHook:
    await queue_for(conn, who, queue_id, Need.EDIT)
    await _one(conn, queue_id, id)  # its own words when it is not there at all
    return hook_out((await admin.delete_queue_hooks(conn, queue_id, (id,)))[0])


@router.delete("", response_model=m.DeletedHooks, operation_id="DeleteQueueHooks")
async def delete_several(conn: DB, who: Who, queue_id: QueueId, id: Ids = []) -> m.DeletedHooks:  # noqa: B006
    """All or nothing: when one of them is not a hook of this queue, none is deleted."""
    await queue_for(conn, who, queue_id, Need.EDIT)
    if not id:
        raise bad_request("give at least one id: ?id=1&id=2")
    rows = await admin.delete_queue_hooks(conn, queue_id, id)
    return m.DeletedHooks(items=[hook_out(r) for r in rows])


async def _schema_of(conn: Conn, queue: Row, schema_id: int) -> Row:
    """The hook's schema, which must be of the queue's domain: another domain's schema and
    no schema at all read the same (a 400, as contract §8 lists it)."""
    row = await admin.schema(conn, schema_id)
    if row is None:
        raise admin.Refused(f"no schema {schema_id} in this domain")
    admin.check_domain(queue, row)
    return row


async def _change(
    conn: Conn, queue: Row, hook: Row, event: str, schema_id: int, enabled: bool
) -> m.QueueHook:
    if (event, schema_id) != (hook["event"], hook["schema_id"]):
        # A switch on or off alone keeps what the rules already passed (and the database's
        # trigger checks every update again): two queries fewer for the page's commonest write.
        schema = await _schema_of(conn, queue, schema_id)
        await admin.check_hook(conn, queue, event, schema, hook["id"])
    return hook_out(await admin.set_hook(conn, hook["id"], event, schema_id, enabled))
