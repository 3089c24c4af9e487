"""What an admin types, checked before the database sees it: each mistake is one clear line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from schemas.queue_types import QUEUE_TYPES
from worker.cli.base import CommandError
from worker.settings import parse_duration
from worker.store import values
from worker.store.admin import Refused

T = TypeVar("T")

MAX_ID = 2**63 - 1  # bigint
ID = click.IntRange(0, MAX_ID)
PAGE_SIZE = 40  # as on the platform's hooks page


def url(text: str) -> str:
    return _checked(values.url, text)


def pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"{option} {item!r} is not NAME=VALUE")
        out[key.strip()] = value
    return out


def headers(given: tuple[str, ...]) -> dict[str, str]:
    return _checked(values.headers, pairs(given, "--header"), "--header")


def secret(text: str) -> str:
    return _checked(values.secret, text)


def max_per_second(rate: float | None) -> float | None:
    return _checked(values.max_per_second, rate)


def _checked(check: Callable[..., T], *args: Any) -> T:
    """The shared rule (worker/store/values.py), its refusal as this command's error."""
    try:
        return check(*args)
    except Refused as exc:
        raise CommandError(str(exc)) from None


def queue_type(text: str) -> int:
    """0..7, or the type's name (`inbound queue`, `inbound-queue`, any case)."""
    key = " ".join(text.replace("-", " ").replace("_", " ").lower().split())
    if key.isascii() and key.isdigit() and int(key) in QUEUE_TYPES:
        return int(key)
    for type_id, name in QUEUE_TYPES.items():
        if name.lower() == key:
            return type_id
    known = ", ".join(f"{i} {name}" for i, name in QUEUE_TYPES.items())
    raise CommandError(f"unknown queue type {text!r}; the types are: {known}")


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise CommandError(f"--grace: {exc}") from None


def ids_text(ids: list[int] | tuple[int, ...], noun: str = "hook") -> str:
    """`hook 5` or `hooks 5, 6, 7`."""
    unique = sorted(set(ids))
    return f"{noun}{'s' if len(unique) != 1 else ''} {', '.join(map(str, unique))}"
