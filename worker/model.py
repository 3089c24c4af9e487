"""Plain data the steps hand each other: what a hook calls, as the cache holds it, and what one
HTTP attempt came to. No I/O library here: the pure decisions (worker/policy.py) read these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from worker.abc import Target


@dataclass(frozen=True, slots=True)
class Schema:
    """A receiver, as the database holds it. The URL (it may carry a token in its query or
    userinfo), the secrets and the static headers (an Authorization) never show in a repr."""

    id: int
    domain_id: int
    name: str
    url: str = field(repr=False)
    secret: str | None = field(repr=False)  # plain `whsec_…`, already decrypted
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    timeout: float  # seconds, the whole attempt
    previous_secret: str | None = field(default=None, repr=False)
    previous_until: float | None = None  # unix time; the previous secret also signs until then
    # Why its secret (or previous secret) could not be read: nothing is sent unsigned for it.
    secret_error: str | None = None
    max_per_second: float | None = None  # schemas.max_per_second; None: no rate limit


@dataclass(frozen=True, slots=True)
class Hook:
    id: int
    queue_id: int
    event: str
    schema: Schema
    target: Target = field(repr=False, compare=False)  # built once per schema (worker/deliver)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one HTTP request came to. `status` is None when no response arrived."""

    status: int | None
    duration: float
    error: str | None = None
    refused: bool = False  # connection refused or reset before a response: worth a quick retry
    blocked: bool = False
    retry_after: str | None = None


def describe_target(url: str) -> str:
    """A URL as it may appear in errors and dead letters: no userinfo, no query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, as it was written
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The hook cache's whole state, one consistent reading at one revision of the tables.
    Never changed in place: a reload builds the next one and swaps it in whole, so a reader
    always sees the hooks, schemas and targets of one and the same load."""

    revision: int
    by_event: dict[tuple[int, str], tuple[Hook, ...]] = field(default_factory=dict)
    by_id: dict[int, Hook] = field(default_factory=dict)
    queue_variables: dict[int, dict[str, str]] = field(default_factory=dict)
    schemas: dict[int, Schema] = field(default_factory=dict)
    targets: dict[int, Target] = field(default_factory=dict)  # schema id -> its target
    rows: frozenset[str] = frozenset()  # the hook lines it was built from (snapshot.py)

    def unsigned(self) -> dict[int, str]:
        """Schemas whose secret cannot be read: schema id -> why (issue 12, defect 7)."""
        return {s.id: s.secret_error for s in self.schemas.values() if s.secret_error}
