"""The settings every test worker runs with: short retry tiers, receivers on 127.0.0.1."""

from __future__ import annotations

from typing import Any

from worker.settings import Settings

TEST_DELAYS = (0.3, 0.6)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "retry_delays": TEST_DELAYS,
        "allow_private_targets": True,  # the receivers live on 127.0.0.1
        "metrics_port": 0,
        "shutdown_grace": 5.0,
        "cache_poll": 0.5,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)
