"""Fixtures of the fault suite (`make chaos`): a seeded database, a clean broker, a counting
receiver, worker processes, and the services themselves to break."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import CountingReceiver, Services
from tests.chaos.scenario import REPORT, RESULTS, Scenario


@pytest.fixture
def services() -> Services:
    profile = os.environ.get("QH_CHAOS_PROFILE")
    if not profile:
        pytest.skip("the fault suite stops and starts services: run it with `make chaos`")
    return Services(
        profile, os.environ["QUEUE_HOOKS_AMQP_URL"], os.environ["QUEUE_HOOKS_DATABASE_URL"]
    )


@pytest.fixture
async def scenario(services: Services, database: str, tmp_path: Path) -> AsyncIterator[Scenario]:
    receiver = CountingReceiver(delay=0.02)
    await receiver.start()
    sc = Scenario(services, receiver, tmp_path)
    await sc.seed()
    try:
        yield sc
    finally:
        for w in sc.workers:
            if w.alive:
                w.kill()
        await services.start()  # whatever a failed test left stopped
        await receiver.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    rows = [r.row() for r in RESULTS]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(rows, indent=2) + "\n")
    tr = terminalreporter
    tr.section("fault suite figures")
    tr.write_line(
        f"{'case':<28}{'events':>7}{'deliv.':>8}{'2xx':>7}{'dead':>6}{'dups':>6}{'bound':>6}"
        f"{'lost':>6}{'requests':>9}  faults"
    )
    for r in RESULTS:
        tr.write_line(
            f"{r.case:<28}{r.events:>7}{r.deliveries:>8}{r.delivered:>7}{sum(r.dead.values()):>6}"
            f"{r.duplicates:>6}{r.duplicate_bound:>6}{r.lost:>6}{r.requests:>9}  {r.faults}"
        )
    tr.write_line(f"(written to {REPORT})")
