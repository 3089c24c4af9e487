"""Who may do what (contract §9): pure decisions, no I/O, unit-tested (tests/unit/).

A token acts in its domain only: anything of another domain is `HIDDEN` (answered 404, as
what does not exist), never `FORBIDDEN`, so nothing tells a caller another domain's queue
exists. An admin token may do everything in its domain; any other token what it was granted
per queue, `edit` implying read.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

TOKEN_PREFIX = "qh_"


class Need(enum.Enum):
    READ = "read"
    EDIT = "edit"


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # 403: it is there, this token may not
    HIDDEN = "hidden"  # 404: not there, or another domain's


@dataclass(frozen=True)
class Caller:
    """The token a request came with, as the API knows it: never its text nor its hash."""

    token_id: int
    name: str
    domain_id: int
    admin: bool
    grants: Mapping[int, bool] = field(default_factory=dict)  # queue id -> may edit

    def __repr__(self) -> str:
        return f"Caller(token {self.token_id} {self.name!r}, domain {self.domain_id})"


def on_queue(caller: Caller, queue_id: int, queue_domain: int | None, need: Need) -> Verdict:
    """`queue_domain` is None when there is no such queue."""
    if queue_domain is None or queue_domain != caller.domain_id:
        return Verdict.HIDDEN
    if caller.admin:
        return Verdict.ALLOWED
    may_edit = caller.grants.get(queue_id)
    if may_edit is None or (need is Need.EDIT and not may_edit):
        return Verdict.FORBIDDEN
    return Verdict.ALLOWED


def may_edit(caller: Caller, queue_id: int) -> bool:
    """For a queue of the caller's domain: whether a change of its hooks would be allowed
    (the queue object's `can_edit`, which the page reads to show a read-only view)."""
    return on_queue(caller, queue_id, caller.domain_id, Need.EDIT) is Verdict.ALLOWED


def readable_queues(caller: Caller) -> list[int] | None:
    """The queues a listing may show; None for all of the domain's (an admin token)."""
    return None if caller.admin else sorted(caller.grants)


def may_search_schemas(caller: Caller) -> Verdict:
    """Needs read on at least one queue: the add dialog's schema box."""
    return Verdict.ALLOWED if caller.admin or caller.grants else Verdict.FORBIDDEN


def on_schema(caller: Caller, schema_domain: int | None) -> Verdict:
    """Schema admin (add, change, delete, rotate): an admin token, of the schema's domain."""
    if schema_domain is None or schema_domain != caller.domain_id:
        return Verdict.HIDDEN
    return Verdict.ALLOWED if caller.admin else Verdict.FORBIDDEN


def may_add_schema(caller: Caller) -> Verdict:
    return Verdict.ALLOWED if caller.admin else Verdict.FORBIDDEN


def new_token() -> str:
    """256 random bits: a token is a bearer secret, guessing one must be hopeless."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    """What is stored and looked up: SHA-256 of the token's text. A high-entropy token needs
    no slow hash; equality on the digest is an index probe, no secret comparison in Python."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
