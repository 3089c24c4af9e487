"""The one settings object (contract §7): built once in the entry point and passed down."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.urls import amqp_nodes, check_database_url

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*\Z")


def parse_duration(text: str | float) -> float:
    """`250ms`, `10s`, `1m`, `6h` or a bare number of seconds, to seconds."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 250ms, 10s, 1m, 6h)")
    return float(match[1]) * _UNITS[match[2] or "s"]


# RabbitMQ takes a TTL of at most ten years, and a tier's wait queue holds a message up to
# twice its delay (broker/topology.py): a longer tier stopped the worker at its declaration.
LONGEST_TIER = 43800 * 3600.0


def _delays(value: object) -> object:
    if isinstance(value, str):
        parts = [p for p in value.split(",") if p.strip()]
        value = tuple(parse_duration(p) for p in parts)
    if isinstance(value, tuple) and any(d > LONGEST_TIER for d in value):
        raise ValueError("a retry tier is at most 43800h (five years), as the broker's TTLs are")
    return value


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


def _nodes(value: str) -> str:
    amqp_nodes(value)  # raises for a URL that is not one (naming its host, never a password)
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QUEUE_HOOKS_", env_file=".env", extra="ignore", frozen=True
    )

    # Out of the repr: a URL may carry a password (issue 12, defect 4).
    # One URL, or the comma-separated URLs of one cluster's nodes (issue 14): the worker and
    # every command connect to the first that answers, and to the next one on a loss.
    amqp_url: Annotated[str, AfterValidator(_nodes)] = Field(
        default="amqp://guest:guest@localhost:5672/", repr=False
    )
    # libpq's URL, multi-host too: postgresql://u@h1:p1,h2:p2/db?target_session_attrs=read-write
    database_url: Annotated[str, AfterValidator(check_database_url)] = Field(
        default="postgresql://postgres@localhost:5432/queue_hooks", repr=False
    )
    exchange: str = Field(default="cc.events", min_length=1)  # "" is the default exchange
    retry_delays: Annotated[tuple[float, ...], NoDecode, BeforeValidator(_delays)] = (
        10.0, 60.0, 600.0, 3600.0, 21600.0,
    )  # fmt: skip
    # Shared fairly among the busy schemas (concurrency.fair_share): none holds the window.
    prefetch: int = Field(default=1024, ge=1, le=65535)
    allow_private_targets: bool = False
    metrics_port: int = Field(default=9464, ge=0, le=65535)  # 0: no HTTP endpoint
    log_format: Annotated[Literal["json", "console"], BeforeValidator(_lower)] = "json"
    log_level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = (
        "info"
    )
    max_event_bytes: int = Field(default=1 << 20, ge=64)
    shutdown_grace: Seconds = 30.0
    secret_key: SecretStr | None = None
    api_host: str = "127.0.0.1"  # `queue-hooks api` (contract §8)
    api_port: int = Field(default=8080, ge=0, le=65535)

    # Not in the contract: tuning knobs with sane defaults.
    # The ceiling of a schema's adaptive concurrency (worker/concurrency.py): the requests in
    # flight to one schema never exceed it, nor its fair share of the prefetch window.
    schema_concurrency: int = Field(default=1024, ge=1)
    # Beyond that limit a delivery waits its turn while the schema makes progress; once none
    # of its requests has finished for this long, what waits is deferred (worker/gate.py).
    schema_stall: Seconds = 0.25
    # Receivers as they are (docs/receivers.md). A circuit per schema opens after this many
    # consecutive failures (no response, timeout or 5xx) and lets one probe through per
    # interval while open (worker/circuit.py).
    circuit_failures: int = Field(default=5, ge=1)
    circuit_open: Seconds = 5.0
    # The adaptive concurrency of a schema (worker/concurrency.py) moves between this floor and
    # schema_concurrency (its ceiling), starting here.
    schema_concurrency_floor: int = Field(default=4, ge=1)
    schema_concurrency_initial: int = Field(default=64, ge=1)
    # schemas.max_per_second (worker/ratelimit.py): a delivery waits in memory for its slot at
    # most this long, beyond it is deferred through the wait queues. Each worker process takes
    # 1/rate_limit_workers of the limit (0: 1/processes).
    rate_wait_max: Seconds = 1.0
    rate_limit_workers: int = Field(default=0, ge=0)
    # `queue-hooks run` supervises this many worker processes (1: the worker itself, no
    # supervisor; worker/supervisor.py).
    processes: int = Field(default=1, ge=1, le=64)
    # How batches of deliveries are written to the wait queues (docs/wire-format.md): 2, their
    # headers in the body; 1, as the versions before wrote them, for a rolling upgrade while
    # older workers still consume queue-hooks.retry. Both are always read.
    wait_format: Literal[1, 2] = 2
    quick_retries: int = Field(default=2, ge=0, le=5)  # in-process, within about a second
    cache_poll: Seconds = 1.0  # safety re-check of the hook revision if a NOTIFY is missed
    secret_grace: Seconds = 86400.0  # previous secret still signs after a rotation
    api_max_body: int = Field(default=1 << 20, ge=1024)  # larger request bodies: 413
    api_pool_size: int = Field(default=10, ge=1)  # database connections of one API process
    # Replicas of each quorum queue when it is first declared (x-quorum-initial-group-size).
    # Unset: one per AMQP URL given, at most 3 (a majority survives one node's loss; more
    # replicas cost every publish a wider round of writes). Existing queues keep theirs.
    quorum_size: int | None = Field(default=None, ge=1, le=9)

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        return amqp_nodes(self.amqp_url)

    @property
    def quorum_group_size(self) -> int:
        return self.quorum_size or min(3, len(self.amqp_urls))

    @property
    def rate_share_workers(self) -> int:
        """How many processes share each schema's max_per_second (worker/ratelimit.py)."""
        return self.rate_limit_workers or self.processes
