"""Shared by every test: quiet logs, and the service fixtures (tests/support/fixtures.py).

Unit tests (tests/unit) need no service; tests/integration/conftest.py refuses to run the
integration tests without them. The fault suite stops and starts the services: only `make
chaos` runs it.
"""

from __future__ import annotations

import os

import pytest

from worker import logs

pytest_plugins = ["tests.support.fixtures"]

collect_ignore = [] if os.environ.get("QH_CHAOS_PROFILE") else ["chaos"]


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    logs.configure("json", "warning")
