"""Plain data the steps hand each other: what a hook calls, as the cache holds it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Schema:
    id: int
    domain_id: int
    name: str
    url: str
    secret: str | None  # plain `whsec_…`, already decrypted
    headers: tuple[tuple[str, str], ...]
    timeout: float  # seconds, the whole attempt
    previous_secret: str | None = None
    previous_until: float | None = None  # unix time; the previous secret also signs until then


@dataclass(frozen=True, slots=True)
class Hook:
    id: int
    queue_id: int
    event: str
    schema: Schema


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent reading of the enabled hooks, at one revision of the tables."""

    revision: int
    by_event: dict[tuple[int, str], tuple[Hook, ...]] = field(default_factory=dict)
    by_id: dict[int, Hook] = field(default_factory=dict)
    queue_variables: dict[int, dict[str, str]] = field(default_factory=dict)
