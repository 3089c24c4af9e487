"""Pure: settings from the environment (contract §7)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from worker.settings import Settings, parse_duration


def test_durations() -> None:
    assert parse_duration("250ms") == 0.25
    assert parse_duration("10s") == 10
    assert parse_duration("1m") == 60
    assert parse_duration("6h") == 21600
    assert parse_duration("1.5") == 1.5
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_defaults_are_the_contracts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AMQP_URL", "DATABASE_URL", "RETRY_DELAYS", "EXCHANGE"):
        monkeypatch.delenv(f"QUEUE_HOOKS_{name}", raising=False)
    s = Settings(_env_file=None)
    assert s.amqp_url == "amqp://guest:guest@localhost:5672/"
    assert s.database_url == "postgresql://postgres@localhost:5432/queue_hooks"
    assert s.exchange == "cc.events"
    assert s.retry_delays == (10, 60, 600, 3600, 21600)
    assert s.allow_private_targets is False
    assert s.max_event_bytes == 1 << 20
    assert s.shutdown_grace == 30


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_HOOKS_RETRY_DELAYS", "100ms, 2s,1h")
    monkeypatch.setenv("QUEUE_HOOKS_SHUTDOWN_GRACE", "5s")
    monkeypatch.setenv("QUEUE_HOOKS_LOG_FORMAT", "CONSOLE")
    monkeypatch.setenv("QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS", "true")
    s = Settings(_env_file=None)
    assert s.retry_delays == (0.1, 2, 3600)
    assert s.shutdown_grace == 5
    assert s.log_format == "console"
    assert s.allow_private_targets is True


def test_a_bad_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_HOOKS_RETRY_DELAYS", "10s,later")
    with pytest.raises(ValidationError, match="'later' is not a duration"):
        Settings(_env_file=None)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        # A wait queue holds a message at most twice its tier (topology.queue_specs) and
        # RabbitMQ takes a TTL of at most ten years: beyond, the worker stopped at its first
        # declaration with "cannot reach a service: PRECONDITION_FAILED ... value_too_large".
        ("RETRY_DELAYS", "10s,99999999999h", "at most 43800h"),
        # The default exchange (""), which may not be declared: "cannot reach a service:
        # ACCESS_REFUSED - operation not permitted on the default exchange".
        ("EXCHANGE", "", "at least 1 character"),
    ],
)
def test_a_value_the_broker_would_refuse_is_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(f"QUEUE_HOOKS_{name}", value)
    with pytest.raises(ValidationError, match=says):
        Settings(_env_file=None)


def test_the_longest_tier_the_broker_takes_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_HOOKS_RETRY_DELAYS", "250ms,43800h")
    assert Settings(_env_file=None).retry_delays == (0.25, 43800 * 3600)
