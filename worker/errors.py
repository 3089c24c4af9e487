"""The one place where exceptions are sorted into what happens next.

- transient: an outage we expect (broker or database restarting, a dropped socket). Log a
  warning, wait, try again; the message stays with the broker.
- permanent: this message can never succeed. Dead-letter it now.
- fatal: the process cannot do its job (bad configuration, a bug). Stop, loudly.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from functools import cache


class Kind(Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    FATAL = "fatal"


class Permanent(Exception):
    """Raised by our own code for a message that can never succeed."""


class Fatal(Exception):
    """Raised by our own code when the process cannot go on (e.g. misconfiguration)."""


class Refused(Exception):
    """The broker refused a publish (basic.nack) on a connection that is still up: a quorum
    queue between two leaders, say. Transient; worker/settle.py makes that publish again
    rather than hand its message back (which would call the event's other hooks again)."""


@cache
def _transient() -> tuple[type[BaseException], ...]:
    """Imported on first use, not with this module: the pure core (worker/policy.py) uses
    Kind and must not load the AMQP and SQL clients (issue 12)."""
    import aiormq.exceptions
    import asyncpg

    return (
        ConnectionError,
        OSError,
        TimeoutError,
        asyncio.TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.InterfaceError,
        asyncpg.TooManyConnectionsError,
        asyncpg.AdminShutdownError,
        asyncpg.QueryCanceledError,
        # A multi-host URL whose hosts all answer, none of them read-write: a failover in
        # progress (the standby not yet promoted), not a wrong setting.
        asyncpg.TargetServerAttributeNotMatched,
        # What asyncpg raises on a connection the server ended under it while it was idle,
        # instead of the shutdown's own error (MagicStack/asyncpg#1069): "cannot switch to
        # state 12; another operation (2) is in progress". Seen in `make chaos` (PostgreSQL
        # stopped) stopping the worker. The connection is dropped and made again.
        asyncpg.InternalClientError,
        aiormq.exceptions.AMQPConnectionError,
        aiormq.exceptions.ChannelInvalidStateError,
        aiormq.exceptions.ChannelClosed,
        aiormq.exceptions.ConnectionClosed,
        aiormq.exceptions.DeliveryError,
        aiormq.exceptions.PublishError,
    )


def transient_types() -> tuple[type[BaseException], ...]:
    """The exception classes of an expected outage (the API answers them 503)."""
    return _transient()


def classify(exc: BaseException) -> Kind:
    if isinstance(exc, Permanent):
        return Kind.PERMANENT
    if isinstance(exc, Fatal):
        return Kind.FATAL
    if isinstance(exc, Refused):
        return Kind.TRANSIENT
    if isinstance(exc, _transient()):
        return Kind.TRANSIENT
    import asyncpg

    if isinstance(exc, asyncpg.PostgresError) and str(getattr(exc, "sqlstate", "")).startswith(
        ("08", "53", "57")  # connection, resources, operator intervention (shutdown)
    ):
        return Kind.TRANSIENT
    return Kind.FATAL


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is Kind.TRANSIENT


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
