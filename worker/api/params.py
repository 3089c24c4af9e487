"""What a path or a query carries (contract §8), read as the platform's engine reads it: an
id, a page or a size written in ASCII digits, `enabled` as `true` or `false`.

FastAPI's own int and bool are lax: "1.0", "+3" and " 3" pass as numbers, "yes", "on" and "1"
as true, where a lookup's id refuses "3.0" (models.LookupId). A mistyped script is told so
(400) instead of being answered for a guess at what it meant.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator, WithJsonSchema

from worker.api.models import MAX_ID


def digits(value: Any) -> Any:
    """ASCII digits only: `str.isdigit` alone also passes "²", which `int` refuses."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("a whole number, written in digits")
        return int(value)
    return value


def true_or_false(value: Any) -> Any:
    if isinstance(value, str):
        word = value.lower()
        if word not in ("true", "false"):
            raise ValueError("true or false")
        return word == "true"
    return value


_Digits = BeforeValidator(digits)
_ID_SCHEMA = WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_ID})

PathId = Annotated[int, _Digits, Path(ge=0, le=MAX_ID), _ID_SCHEMA]
QueryIds = Annotated[list[Annotated[int, _Digits, Query(ge=0, le=MAX_ID), _ID_SCHEMA]], Query()]
PageNo = Annotated[
    int, _Digits, Query(ge=1, le=10_000_000),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 10_000_000, "default": 1}),
]  # fmt: skip
PageSize = Annotated[
    int, _Digits, Query(ge=1, le=1000),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 1000, "default": 40}),
]  # fmt: skip
Enabled = Annotated[
    bool | None, BeforeValidator(true_or_false), Query(),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "null"}]}),
]  # fmt: skip
