"""What the page needs around the hooks: queues, schemas (and their admin), event labels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from schemas.queue_types import EVENTS, LABELS_EN, LABELS_RU, QUEUE_TYPES, events_fired
from worker import secrets
from worker.api import models as m
from worker.api import rights
from worker.api.auth import DB, Who, enforce, queue_for
from worker.api.errors import bad_request
from worker.api.params import PageNo, PageSize, PathId
from worker.api.rights import Need
from worker.settings import Settings, parse_duration
from worker.store import admin, values
from worker.store.admin import Conn, Row
from worker.urls import without_password

router = APIRouter()

Page = PageNo
Size = PageSize
Search = Annotated[str | None, Query(max_length=200)]
SchemaId = PathId


def queue_out(r: Row, who: rights.Caller) -> m.Queue:
    return m.Queue(
        id=r["id"], name=r["name"], type=r["type"], type_name=QUEUE_TYPES[r["type"]],
        events=events_fired(r["type"]), can_edit=rights.may_edit(who, r["id"]),
    )  # fmt: skip


def schema_out(r: Row) -> m.Schema:
    return m.Schema(
        id=str(r["id"]), name=r["name"], url=without_password(r["url"]),
        signed=r["secret"] is not None,
        timeout_ms=r["timeout_ms"], headers=sorted(r["headers"]),
        max_per_second=r["max_per_second"],
    )  # fmt: skip


@router.get("/call_center/queues", response_model=m.QueuePage, tags=["queues"])
async def queues(
    conn: DB, who: Who, page: Page = 1, size: Size = 40, q: Search = None
) -> m.QueuePage:
    """Only the queues this token may read."""
    rows = await admin.readable_queues(
        conn, who.domain_id, rights.readable_queues(who), q or None, (page - 1) * size, size + 1
    )
    return m.QueuePage(items=[queue_out(r, who) for r in rows[:size]], next=len(rows) > size)


@router.get("/call_center/queues/{queue_id}", response_model=m.Queue, tags=["queues"])
async def one_queue(conn: DB, who: Who, queue_id: PathId) -> m.Queue:
    return queue_out(await queue_for(conn, who, queue_id, Need.READ), who)


@router.get("/events", response_model=m.EventLabels, tags=["events"])
async def events(who: Who) -> m.EventLabels:
    return m.EventLabels(
        items=[m.EventLabel(event=e, en=LABELS_EN[e], ru=LABELS_RU[e]) for e in EVENTS]
    )


@router.get("/schemas", response_model=m.SchemaPage, tags=["schemas"])
async def schemas(
    conn: DB, who: Who, page: Page = 1, size: Size = 40, q: Search = None
) -> m.SchemaPage:
    enforce(rights.may_search_schemas(who), "schemas", "search schemas (no queue to read)")
    rows = await admin.domain_schemas(conn, who.domain_id, q or None, (page - 1) * size, size + 1)
    return m.SchemaPage(items=[schema_out(r) for r in rows[:size]], next=len(rows) > size)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _key(request: Request) -> str | None:
    key = _settings(request).secret_key
    return key.get_secret_value() if key else None


def _checked_url(request: Request, url: str) -> str:
    checked = values.url(url)
    admin.check_target(checked, _settings(request).allow_private_targets)
    return checked


async def _admin_schema(conn: Conn, who: rights.Caller, schema_id: int) -> Row:
    row = await admin.schema(conn, schema_id)
    enforce(rights.on_schema(who, row["domain_id"] if row else None), f"schema {schema_id}",
            "change schemas (an admin token may)")  # fmt: skip
    assert row is not None
    return row


@router.post("/schemas", response_model=m.SchemaWithSecret, tags=["schemas"])
async def add_schema(
    conn: DB, who: Who, request: Request, body: m.SchemaCreate
) -> m.SchemaWithSecret:
    enforce(rights.may_add_schema(who), "schemas", "add schemas (an admin token may)")
    url, extra = _checked_url(request, body.url), values.headers(body.headers)
    rate = values.max_per_second(body.max_per_second)
    if body.secret and not body.signed:
        raise bad_request("give a secret or signed: false, not both")
    given = values.secret(body.secret) if body.secret else secrets.generate()
    secret = given if body.signed else None
    name = body.name.strip()
    if not name:
        raise bad_request("name cannot be empty")
    sealed = secrets.seal(secret, _key(request)) if secret else None
    schema_id = await admin.add_schema(
        conn, who.domain_id, name, url, body.timeout_ms, extra, sealed, rate
    )
    row = await admin.require_schema(conn, schema_id)
    shown = secret if secret and not body.secret else None
    return m.SchemaWithSecret(**schema_out(row).model_dump(), secret=shown)


@router.patch("/schemas/{id}", response_model=m.Schema, tags=["schemas"])
async def edit_schema(
    conn: DB, who: Who, request: Request, id: SchemaId, body: m.SchemaPatch
) -> m.Schema:
    await _admin_schema(conn, who, id)
    changes: dict[str, object] = {}
    if body.name is not None:
        if not body.name.strip():
            raise bad_request("name cannot be empty")
        changes["name"] = body.name.strip()
    if body.url is not None:
        changes["url"] = _checked_url(request, body.url)
    if body.timeout_ms is not None:
        changes["timeout_ms"] = body.timeout_ms
    if body.headers is not None:
        changes["headers"] = values.headers(body.headers)
    if "max_per_second" in body.model_fields_set:  # null drops the limit
        changes["max_per_second"] = values.max_per_second(body.max_per_second)
    if changes:
        await admin.edit_schema(conn, id, changes)
    return schema_out(await admin.require_schema(conn, id))


@router.delete(
    "/schemas/{id}", response_model=m.Schema, tags=["schemas"],
    responses={409: {"model": m.Error, "description": "hooks use the schema"}},
)  # fmt: skip
async def delete_schema(conn: DB, who: Who, id: SchemaId) -> m.Schema:
    row = await _admin_schema(conn, who, id)
    await admin.check_unused(conn, row)
    await admin.delete_schema(conn, id)
    return schema_out(row)


@router.post("/schemas/{id}/rotate-secret", response_model=m.SchemaWithSecret, tags=["schemas"])
async def rotate_secret(
    conn: DB, who: Who, request: Request, id: SchemaId,
    body: m.RotateSecret | None = None,
) -> m.SchemaWithSecret:  # fmt: skip
    await _admin_schema(conn, who, id)
    body = body or m.RotateSecret()
    try:
        grace = (
            _settings(request).secret_grace if body.grace is None else parse_duration(body.grace)
        )
    except ValueError as exc:
        raise bad_request(f"grace: {exc}") from None
    secret = values.secret(body.secret) if body.secret else secrets.generate()
    until = await admin.rotate_secret(conn, id, secrets.seal(secret, _key(request)), grace)
    row = await admin.require_schema(conn, id)
    return m.SchemaWithSecret(
        **schema_out(row).model_dump(), secret=None if body.secret else secret,
        previous_secret_until=until,
    )  # fmt: skip
