"""How the admin commands print: aligned tables for people, one JSON object for scripts."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import orjson

from worker.cli.inputs import PAGE_SIZE

F = TypeVar("F", bound=Callable[..., Any])


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(headers), *([_text(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _text(value: object) -> str:
    if value is None:
        return "-"
    return shown(value if isinstance(value, str) else str(value))


# Line breaks, escape sequences and bidirectional overrides in a name (SQL lets any in) would
# break a table's rows or act on the admin's terminal: they are shown as escapes instead.
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def shown(text: str) -> str:
    return "".join(repr(c)[1:-1] if _hidden(c) else c for c in text)  # "\n", "\x1b", ...


def _hidden(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Zl", "Zp") or ord(c) in _BIDI


def echo_json(obj: object) -> None:
    click.echo(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode())


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")(fn)


def paging(fn: F) -> F:
    fn = click.option(
        "--size", type=click.IntRange(1, 1000), default=PAGE_SIZE, show_default=True,
        help="Rows per page.",
    )(fn)  # fmt: skip
    return click.option(
        "--page", type=click.IntRange(1), default=1, show_default=True, help="Which page (from 1)."
    )(fn)


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows, how many there are in all, whether more follow."""

    rows: list[Any]
    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.offset + len(self.rows) < self.total else None

    def as_json(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "items": items, "next": self.next, "page": self.number, "size": self.size,
            "total": self.total,
        }  # fmt: skip

    def note(self, what: str) -> str:
        """The line under a table: where this page is, and whether there is a next one."""
        if self.total == 0:
            return f"no {what}"
        if not self.rows:
            return f"page {self.number} is past the end: {self.total} {what} in all"
        first, last = self.offset + 1, self.offset + len(self.rows)
        more = f"next page: --page {self.next}" if self.next else "no next page"
        return f"{what} {first}-{last} of {self.total}; {more}"
