"""What an admin gives for a schema (URL, headers, secret), checked before the database sees
it: one rule for the command line and the API, each mistake one clear line (`Refused`)."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from urllib.parse import urlsplit

from worker.store.admin import Refused


def url(text: str) -> str:
    """http or https with a host: the same rule as the table's check (contract §2)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise Refused(f"bad URL {text!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not text.lower().startswith(parts.scheme + "://"):
        raise Refused(f"bad URL {text!r}: it must start with http:// or https://")
    if not parts.hostname:
        raise Refused(f"bad URL {text!r}: it has no host")
    if any(c.isspace() for c in text):
        raise Refused(f"bad URL {text!r}: it contains white space")
    return text


def headers(given: Mapping[str, str], what: str = "header") -> dict[str, str]:
    from worker.deliver import PROTECTED, header_fault  # here: the HTTP stack is slow to import

    for name, value in given.items():
        if fault := header_fault(name, value):
            raise Refused(f"{what} {name!r}: {fault}")
        if name.lower() in PROTECTED:
            raise Refused(f"{what} {name!r}: queue-hooks sets this header itself, a schema cannot")
    return dict(given)


def secret(text: str) -> str:
    """`whsec_` + base64 of 24..64 random bytes (contract §2)."""
    rule = "a secret is whsec_ followed by the base64 of 24 to 64 random bytes"
    if not text.startswith("whsec_"):
        raise Refused(f"bad secret: {rule}")
    try:
        raw = base64.b64decode(text[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"bad secret: not base64 after whsec_; {rule}") from None
    if not 24 <= len(raw) <= 64:
        raise Refused(f"bad secret: {len(raw)} bytes; {rule}")
    return text


MAX_RATE = 1e9  # deliveries a second: far beyond any receiver, short of float noise


def max_per_second(rate: float | None) -> float | None:
    """A schema's rate limit: a positive number of deliveries a second, or None for none
    (the table's check, deploy/sql/0004, refuses the rest too)."""
    if rate is None:
        return None
    if not math.isfinite(rate) or not 0 < rate <= MAX_RATE:
        raise Refused(
            f"max_per_second {rate:g}: give a number of deliveries a second above 0 and at most "
            f"{MAX_RATE:g}, or none for no limit"
        )
    return float(rate)
