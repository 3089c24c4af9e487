"""The one classification of errors (worker/errors.py): what waits an outage out, what stops."""

from __future__ import annotations

import asyncpg
import pytest

from worker.errors import Fatal, Kind, Permanent, classify


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        # A connection PostgreSQL's shutdown ended while it was idle (asyncpg#1069): it stopped
        # the worker in `make chaos` before it was transient.
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
    ],
    ids=type,
)
def test_an_outage_is_transient(exc: BaseException) -> None:
    assert classify(exc) is Kind.TRANSIENT


def test_ours_and_the_unknown_are_what_they_say() -> None:
    assert classify(Permanent("bad message")) is Kind.PERMANENT
    assert classify(Fatal("bad setting")) is Kind.FATAL
    assert classify(KeyError("a bug")) is Kind.FATAL
