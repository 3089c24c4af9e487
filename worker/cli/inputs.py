"""What an admin types, checked before the database sees it: each mistake is one clear line."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

import click

from schemas.queue_types import QUEUE_TYPES
from worker.cli.base import CommandError
from worker.settings import parse_duration

MAX_ID = 2**63 - 1  # bigint
ID = click.IntRange(0, MAX_ID)
PAGE_SIZE = 40  # as on the platform's hooks page

# RFC 9110 token: what a header name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def url(text: str) -> str:
    """http or https with a host: the same rule as the table's check (contract §2)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise CommandError(f"bad URL {text!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not text.lower().startswith(parts.scheme + "://"):
        raise CommandError(f"bad URL {text!r}: it must start with http:// or https://")
    if not parts.hostname:
        raise CommandError(f"bad URL {text!r}: it has no host")
    if any(c.isspace() for c in text):
        raise CommandError(f"bad URL {text!r}: it contains white space")
    return text


def pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"{option} {item!r} is not NAME=VALUE")
        out[key.strip()] = value
    return out


def headers(values: tuple[str, ...]) -> dict[str, str]:
    from worker.deliver import PROTECTED  # here: the HTTP stack is slow to import

    out = pairs(values, "--header")
    for name, value in out.items():
        if not _TOKEN.match(name):
            raise CommandError(f"--header {name!r}: not a valid header name")
        if any(c in value for c in "\r\n\0"):
            raise CommandError(f"--header {name!r}: a value cannot hold a line break")
        if name.lower() in PROTECTED:
            raise CommandError(
                f"--header {name!r}: queue-hooks sets this header itself, a schema cannot"
            )
    return out


def secret(text: str) -> str:
    """`whsec_` + base64 of 24..64 random bytes (contract §2)."""
    rule = "a secret is whsec_ followed by the base64 of 24 to 64 random bytes"
    if not text.startswith("whsec_"):
        raise CommandError(f"bad secret: {rule}")
    try:
        raw = base64.b64decode(text[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise CommandError(f"bad secret: not base64 after whsec_; {rule}") from None
    if not 24 <= len(raw) <= 64:
        raise CommandError(f"bad secret: {len(raw)} bytes; {rule}")
    return text


def queue_type(text: str) -> int:
    """0..7, or the type's name (`inbound queue`, `inbound-queue`, any case)."""
    key = " ".join(text.replace("-", " ").replace("_", " ").lower().split())
    if key.isdigit() and int(key) in QUEUE_TYPES:
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
