"""Plain-SQL fixtures (deploy/fixtures), loaded the way an admin would with psql."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg


class FixtureNotFound(LookupError):
    pass


def fixtures_dir() -> Path:
    packaged = Path(str(resources.files("worker"))) / "fixtures"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "deploy" / "fixtures"


def find(name: str) -> Path:
    """A path as given, or the name of a packaged fixture (`demo` -> demo.sql)."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = fixtures_dir() / f"{name.removesuffix('.sql')}.sql"
    if packaged.is_file():
        return packaged
    known = ", ".join(sorted(p.stem for p in fixtures_dir().glob("*.sql")))
    raise FixtureNotFound(f"no fixture file {name!r} (packaged fixtures: {known})")


async def load(conn: asyncpg.Connection[Any], sql: str) -> None:
    """All of a fixture or none of it."""
    async with conn.transaction():
        await conn.execute(sql)
