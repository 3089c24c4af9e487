"""`queue-hooks check`: the worker's readiness, for a person; exits non-zero when not ready.

Ready means what /readyz means: RabbitMQ and PostgreSQL answer and a worker consumes
`queue-hooks.events` (contract §1: ops recognise a running worker by that consumer). When a
worker's metrics port answers on this host (or at --url), its own /readyz is asked too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import click

from worker.broker.topology import DEAD_QUEUE, EVENTS_QUEUE, RETRY_QUEUE
from worker.cli.base import main_group, run_async, settings
from worker.errors import one_line
from worker.settings import Settings
from worker.urls import amqp_nodes, database_hosts, where


@dataclass(frozen=True)
class Line:
    name: str
    ok: bool | None  # None: for information, not part of readiness
    detail: str


def _nodes(url: str) -> str:
    """host:port of each node, only: never the credentials of a URL."""
    return ",".join(where(u) for u in amqp_nodes(url))


async def _broker(cfg: Settings) -> list[Line]:
    from worker.broker.probe import queue_states

    try:
        states = await asyncio.wait_for(queue_states(cfg.amqp_url), 10)
    except Exception as exc:
        return [Line("rabbitmq", False, f"{_nodes(cfg.amqp_url)}: {one_line(exc)}")]
    lines = [Line("rabbitmq", True, _nodes(cfg.amqp_url))]
    events = states[EVENTS_QUEUE]
    if events is None:
        lines.append(Line("consuming", False, f"no queue {EVENTS_QUEUE}: no worker has started"))
    else:
        lines.append(
            Line(
                "consuming",
                events.consumers > 0,
                f"{events.consumers} consumer(s) on {EVENTS_QUEUE}, {events.messages} waiting",
            )
        )
    for name in (RETRY_QUEUE, DEAD_QUEUE):
        state = states[name]
        shown = "missing" if state is None else f"{state.messages} message(s)"
        lines.append(Line(name.removeprefix("queue-hooks."), None, f"{shown} in {name}"))
    return lines


async def _database(cfg: Settings) -> Line:
    from worker.store.lookup import probe

    try:
        hooks, version = await asyncio.wait_for(probe(cfg.database_url), 10)
    except Exception as exc:
        return Line("postgresql", False, f"{database_hosts(cfg.database_url)}: {one_line(exc)}")
    detail = f"{database_hosts(cfg.database_url)}, migration {version:04d}, {hooks} enabled hook(s)"
    return Line("postgresql", True, detail)


async def _secrets(cfg: Settings) -> Line | None:
    """Schemas whose secret this configuration cannot read: the worker sends them nothing.
    For information (the worker delivers for every other schema), but in capitals."""
    from worker.store.lookup import unsigned_schemas

    key = cfg.secret_key.get_secret_value() if cfg.secret_key else None
    try:
        bad = await asyncio.wait_for(unsigned_schemas(cfg.database_url, key), 10)
    except Exception:
        return None  # the postgresql line says what is wrong
    if not bad:
        return None
    shown = "; ".join(f"schema {k}: {v}" for k, v in bad.items())
    return Line(
        "secrets", None,
        f"WARNING: {len(bad)} schema(s) cannot sign, their deliveries are not sent: {shown}",
    )  # fmt: skip


async def _readyz(url: str, required: bool) -> list[Line]:
    """The worker's own view, and its open circuits, one line each. A default URL nobody
    answers on is no failure: the worker may well run on another host."""
    import httpx  # here, not at import: `queue-hooks run` loads this module too (2.7 MB RSS)

    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        if not required:
            return [Line("worker", None, f"{url}: no answer (no worker on this host?)")]
        return [Line("worker", False, f"{url}: {one_line(exc)}")]
    lines = response.text.strip().splitlines()
    circuits = [line for line in lines if line.startswith("circuit ")]
    text = " | ".join(line for line in lines if not line.startswith("circuit "))
    worker = Line("worker", response.status_code == 200, f"{url}: {text}")
    return [worker, *(Line("circuits", None, line) for line in circuits)]


async def gather(cfg: Settings, url: str | None) -> list[Line]:
    target = url or (f"http://127.0.0.1:{cfg.metrics_port}/readyz" if cfg.metrics_port else None)
    broker, database, worker, unsigned = await asyncio.gather(
        _broker(cfg), _database(cfg),
        _readyz(target, required=url is not None) if target else asyncio.sleep(0, []),
        _secrets(cfg),
    )  # fmt: skip
    return [
        *broker[:1], database, *([unsigned] if unsigned else []), *broker[1:2],
        *worker, *broker[2:],
    ]  # fmt: skip


@main_group.command()
@click.option("--url", metavar="URL", help="The worker /readyz to ask (it must answer).")
@click.pass_context
def check(ctx: click.Context, url: str | None) -> None:
    """Is queue-hooks ready? Exits 0 when it is, 1 when it is not."""
    lines = run_async(gather(settings(ctx), url))
    for line in lines:
        mark = {True: "ok", False: "FAIL", None: ""}[line.ok]
        click.echo(f"{line.name:<12} {mark:<5} {line.detail}")
    failed = [line.name for line in lines if line.ok is False]
    if failed:
        click.echo(f"not ready: {', '.join(failed)}")
        ctx.exit(1)
    click.echo("ready")
