"""A schema whose secret cannot be read (issue 12, defect 7): the load goes on, the schema is
marked, and the error is logged once per schema, not per load or delivery."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from worker import secrets
from worker.model import Snapshot
from worker.store.cache import _report_unsigned
from worker.store.snapshot import build_schemas


def _row(schema_id: int, secret: str | None) -> dict[str, Any]:
    return {
        "id": schema_id, "domain_id": 1, "name": f"s{schema_id}", "url": "https://x.example/",
        "secret": secret, "headers": {}, "timeout_ms": 1000, "previous_secret": None,
        "previous_until": None,
        "max_per_second": None,
    }  # fmt: skip


def _read(stored: str | None) -> str | None:
    return secrets.unseal(stored, None)  # no QUEUE_HOOKS_SECRET_KEY


def test_one_unreadable_secret_marks_its_schema_only() -> None:
    plain = secrets.generate()
    rows = [_row(1, plain), _row(2, secrets.seal(secrets.generate(), "k")), _row(3, None)]
    schemas = build_schemas(rows, _read, {})
    assert schemas[1].secret == plain and schemas[1].secret_error is None
    assert schemas[3].secret is None and schemas[3].secret_error is None
    error = schemas[2].secret_error
    assert error is not None and schemas[2].secret is None
    assert "QUEUE_HOOKS_SECRET_KEY is not set" in error and "rotate-secret 2" in error


def test_the_error_is_logged_once_per_schema() -> None:
    bad = build_schemas([_row(2, "enc:damaged")], _read, {})
    empty = Snapshot(revision=-1)
    loaded = Snapshot(revision=1, schemas=bad)
    with capture_logs() as logs:
        _report_unsigned(empty, bad)
        _report_unsigned(loaded, build_schemas([_row(2, "enc:damaged")], _read, bad))  # again
    assert [entry["event"] for entry in logs] == ["schema cannot sign"]
    fixed = build_schemas([_row(2, secrets.generate())], _read, bad)
    with capture_logs() as logs:
        _report_unsigned(loaded, fixed)
    assert not [entry for entry in logs if entry["log_level"] == "error"]
    assert loaded.unsigned() == {2: bad[2].secret_error}
