"""The API's bodies and answers (contract §8): the pydantic models are the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, WithJsonSchema

from schemas.queue_types import EventName

MAX_ID = 2**63 - 1  # bigint


def _id(value: Any) -> Any:
    """A lookup's id as the platform encodes 64-bit ids (a string), or as a number."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("an id is a whole number, as a string or a number")
    return value


LookupId = Annotated[
    int,
    BeforeValidator(_id),
    Field(ge=0, le=MAX_ID),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "string", "pattern": "^[0-9]{1,19}$"},
                {"type": "integer", "minimum": 0, "maximum": MAX_ID},
            ]
        }
    ),
]


class _In(BaseModel):
    # What the platform's clients send besides (queue_id, id, ...) is ignored, as its engine does.
    model_config = ConfigDict(extra="ignore")


class LookupIn(_In):
    id: LookupId


class Lookup(BaseModel):
    id: str
    name: str


class QueueHook(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    event: EventName
    schema_: Lookup = Field(alias="schema")
    enabled: bool
    queue_id: int
    updated_at: datetime
    updated_by: Lookup | None = None


class HookPage(BaseModel):
    items: list[QueueHook]
    next: bool


class DeletedHooks(BaseModel):
    items: list[QueueHook]


class HookCreate(_In):
    event: EventName
    schema_: LookupIn = Field(alias="schema")
    enabled: bool = True


class HookUpdate(_In):
    event: EventName
    schema_: LookupIn = Field(alias="schema")
    enabled: bool | None = None  # absent: as it was


class HookPatch(_In):
    event: EventName | None = None
    schema_: LookupIn | None = Field(default=None, alias="schema")
    enabled: bool | None = None
    fields: list[str] | None = None  # restricts the change to these keys

    def given(self) -> set[str]:
        """The keys this PATCH changes: those sent, restricted by `fields` when it is there.
        `schema` or `schema.id` names the schema; `schema.name` is not a key a hook stores."""
        sent = self.model_fields_set - {"fields"}
        if self.fields is None:
            return sent
        return sent & {_PATCHABLE[f] for f in self.fields if f in _PATCHABLE}


_PATCHABLE = {"event": "event", "schema": "schema_", "schema.id": "schema_", "enabled": "enabled"}


class Queue(BaseModel):
    id: int
    name: str
    type: int
    type_name: str
    events: list[EventName]
    # Not in the contract: tells the page (and any client) whether this token may change the
    # queue's hooks, so it can show a read-only view rather than controls that would be refused.
    can_edit: bool = False


class QueuePage(BaseModel):
    items: list[Queue]
    next: bool


class Schema(BaseModel):
    id: str
    name: str
    url: str
    signed: bool
    timeout_ms: int
    headers: list[str]  # names only: values may be credentials
    max_per_second: float | None = None  # its rate limit (issue 13); null: none


class SchemaPage(BaseModel):
    items: list[Schema]
    next: bool


class SchemaWithSecret(Schema):
    secret: str | None = None  # the new secret: in this answer once, never again
    previous_secret_until: datetime | None = None


Name = Annotated[str, Field(min_length=1, max_length=200)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]


def _not_a_boolean(value: Any) -> Any:
    """pydantic reads `true` as the integer 1: a timeout of 1 ms, every delivery timed out."""
    if isinstance(value, bool):
        raise ValueError("a whole number of milliseconds, not true or false")
    return value


TimeoutMs = Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=1, le=600_000)]
Headers = Annotated[dict[str, Annotated[str, Field(max_length=8192)]], Field(max_length=50)]
# The rule (above 0, at most 1e9) is worker/store/values.max_per_second, as for `schemas add`.
# Strict: a number, never `true` or "12" read as one.
Rate = Annotated[
    StrictFloat | None, Field(description="deliveries a second its receiver takes; null: none")
]


class SchemaCreate(_In):
    name: Name
    url: Url
    timeout_ms: TimeoutMs = 10_000
    headers: Headers = Field(default_factory=dict)
    signed: bool = True  # false: unsigned calls (no webhook-signature)
    secret: str | None = None  # use this secret rather than a new one
    max_per_second: Rate = None


class SchemaPatch(_In):
    name: Name | None = None
    url: Url | None = None
    timeout_ms: TimeoutMs | None = None
    headers: Headers | None = None  # replaces them all
    max_per_second: Rate = None  # given as null: the limit is dropped; absent: kept


class RotateSecret(_In):
    grace: str | None = None  # e.g. "24h"; default QUEUE_HOOKS_SECRET_GRACE
    secret: str | None = None


class EventLabel(BaseModel):
    event: EventName
    en: str
    ru: str


class EventLabels(BaseModel):
    items: list[EventLabel]


class Error(BaseModel):
    """Every error answer (contract §8)."""

    id: str
    code: int
    status: str
    detail: str
