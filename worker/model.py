"""Plain data the steps hand each other: what a hook calls, as the cache holds it, and what one
HTTP attempt came to. No I/O library here: the pure decisions (worker/policy.py) read these."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from schemas.queue_types import EVENTS

if TYPE_CHECKING:
    from worker.abc import Target

EVENT_INDEX: dict[str, int] = {name: i for i, name in enumerate(EVENTS)}


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


# Lookups remembered per snapshot (Hook objects made once for a busy queue's event). Bounded,
# so that events of ever new queue ids cannot grow it: full, it starts again.
_REMEMBERED = 4096


@dataclass(frozen=True, slots=True)
class HookTable:
    """Every enabled hook as columns of machine integers, a row a hook, ordered by queue id
    then hook id: 30 bytes a hook, where a `Hook` object with its lookup entries and its text
    line took 448 (issue 13, cold start on 100,000 hooks). No Python object per hook, so the
    collector has nothing to walk; `Hook` objects are made on lookup (Snapshot.hooks_for)."""

    queues: array[int] = field(default_factory=lambda: array("q"))
    events: array[int] = field(default_factory=lambda: array("h"))  # index in EVENTS
    ids: array[int] = field(default_factory=lambda: array("q"))
    schema_ids: array[int] = field(default_factory=lambda: array("q"))
    by_id: array[int] = field(default_factory=lambda: array("i"))  # rows in hook id order
    schema_set: frozenset[int] = frozenset()  # the schemas the hooks call

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, queue_id: int, event: int) -> list[int]:
        """The rows of a queue's event, in hook id order."""
        queues, events = self.queues, self.events
        row = bisect_left(queues, queue_id)
        out = []
        while row < len(queues) and queues[row] == queue_id:
            if events[row] == event:
                out.append(row)
            row += 1
        return out

    def row_of(self, hook_id: int) -> int | None:
        ids, by_id = self.ids, self.by_id
        at = bisect_left(by_id, hook_id, key=ids.__getitem__)
        if at < len(by_id) and ids[by_id[at]] == hook_id:
            return by_id[at]
        return None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The hook cache's whole state, one consistent reading at one revision of the tables.
    Never changed in place: a reload builds the next one and swaps it in whole, so a reader
    always sees the hooks, schemas and targets of one and the same load."""

    revision: int
    hooks: HookTable = field(default_factory=HookTable)
    queue_variables: dict[int, dict[str, str]] = field(default_factory=dict)
    schemas: dict[int, Schema] = field(default_factory=dict)
    targets: dict[int, Target] = field(default_factory=dict)  # schema id -> its target
    # What hooks_for made, kept with the snapshot it was made from (a cache of pure reads).
    _made: dict[tuple[int, str], tuple[Hook, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def hooks_for(self, queue_id: int, event: str) -> tuple[Hook, ...]:
        key = (queue_id, event)
        made = self._made.get(key)
        if made is None:
            index = EVENT_INDEX.get(event)
            rows = self.hooks.rows_of(queue_id, index) if index is not None else []
            made = tuple(self._hook(row) for row in rows)
            if len(self._made) >= _REMEMBERED:
                self._made.clear()
            self._made[key] = made
        return made

    def hook(self, hook_id: int) -> Hook | None:
        row = self.hooks.row_of(hook_id)
        return None if row is None else self._hook(row)

    def _hook(self, row: int) -> Hook:
        t = self.hooks
        schema_id = t.schema_ids[row]
        return Hook(
            t.ids[row], t.queues[row], EVENTS[t.events[row]], self.schemas[schema_id],
            self.targets[schema_id],
        )  # fmt: skip

    def unsigned(self) -> dict[int, str]:
        """Schemas whose secret cannot be read: schema id -> why (issue 12, defect 7)."""
        return {s.id: s.secret_error for s in self.schemas.values() if s.secret_error}
