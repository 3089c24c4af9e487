"""The integration tests run against the real RabbitMQ and PostgreSQL, never mocks."""

from __future__ import annotations

import os

import pytest

if "QUEUE_HOOKS_AMQP_URL" not in os.environ or "QUEUE_HOOKS_DATABASE_URL" not in os.environ:
    raise pytest.UsageError(
        "the integration tests need the real services: run `make test` (it starts them), or"
        " set QUEUE_HOOKS_AMQP_URL and QUEUE_HOOKS_DATABASE_URL; `make test-unit` needs none"
    )
