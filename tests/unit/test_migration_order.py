"""The migration runner applies every numbered file, in the order of the numbers, gaps or not."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

# The module, not the function of the same name that worker.store exports.
m = importlib.import_module("worker.store.migrate")


def test_files_are_in_numeric_order_and_a_missing_number_is_no_gap_to_stop_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("0010_later.sql", "0004_schema_rate_limit.sql", "0001_init.sql", "notes.md"):
        (tmp_path / name).write_text("SELECT 1;")
    monkeypatch.setattr(m, "sql_dir", lambda: tmp_path)
    assert [(v, p.name) for v, p in m.migration_files()] == [
        (1, "0001_init.sql"), (4, "0004_schema_rate_limit.sql"), (10, "0010_later.sql"),
    ]  # fmt: skip


def test_the_rate_limit_migration_ships() -> None:
    versions = [v for v, _ in m.migration_files()]
    assert 4 in versions and versions == sorted(set(versions))
