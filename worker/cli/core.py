"""run, migrate, publish and demo-receiver."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from typing import BinaryIO

import click
import orjson

from schemas.events import CALL_FIELDS, FIELDS_OF
from schemas.queue_types import EVENTS
from worker.broker import Broker
from worker.broker import topology as t
from worker.cli.base import CommandError, main_group, run_async, settings
from worker.errors import Fatal
from worker.settings import Settings

# What a queue engine typically sends: strings for nearly everything (contract §1).
SAMPLE: dict[str, str] = {
    "attempt_id": "1001", "destination": "+15550100", "use_processing": "true",
    "agent_channel_id": "a1b2c3d4-0000-4000-8000-00000000a9e1",
    "member_channel_id": "a1b2c3d4-0000-4000-8000-00000000b0b1",
    "agent_name": "Alice Agent", "agent_id": "7", "user_id": "70", "agent_extension": "1007",
    "member_name": "Bob Member", "member_id": "4242", "cc_attempt_seq": "1",
    "call_bill_sec": "42", "call_duration": "57.5", "amd_result": "HUMAN",
    "call_voice_sec": "40", "call_cause": "NORMAL_CLEARING", "call_sip_code": "200",
    "cc_result": "success",
}  # fmt: skip


def sample_event(
    queue_id: int, event: str, channel: str, fields: dict[str, str], variables: dict[str, str]
) -> dict[str, object]:
    body: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "event": event,
        "queue_id": str(queue_id),
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "channel": channel,
    }
    for name in FIELDS_OF[event]:
        if name != "channel" and (channel == "call" or name not in CALL_FIELDS):
            body[name] = SAMPLE[name]
    body.update(fields)
    body["variables"] = variables or {"crm_contact_id": "C-1001", "language": "en"}
    return body


@main_group.command()
@click.option(
    "--processes", type=click.IntRange(1, 64), default=None,
    help="Supervise this many worker processes (default QUEUE_HOOKS_PROCESSES, 1).",
)  # fmt: skip
@click.pass_context
def run(ctx: click.Context, processes: int | None) -> None:
    """Run the worker until SIGTERM or SIGINT."""
    cfg = settings(ctx)
    if (processes or cfg.processes) > 1:
        from worker.supervisor import supervise

        if run_async(supervise(cfg, processes or cfg.processes)):
            raise CommandError("worker processes stopped with an error (see the log)")
        return
    from worker.app import serve

    try:
        run_async(serve(cfg))
    except Fatal as exc:
        raise CommandError(f"worker stopped: {exc}") from None


@main_group.command()
@click.option(
    "--fixtures", "fixture_names", multiple=True, metavar="FILE|NAME",
    help="Then load these SQL fixtures (a path, or `demo` for the packaged demo set).",
)  # fmt: skip
@click.pass_context
def migrate(ctx: click.Context, fixture_names: tuple[str, ...]) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    from worker.store import fixtures, wait_for_database
    from worker.store import migrate as apply

    files = [fixtures.find(name) for name in fixture_names]
    scripts = [path.read_text(encoding="utf-8") for path in files]

    async def go() -> list[str]:
        conn = await wait_for_database(settings(ctx).database_url, attempts=5)
        try:
            applied = await apply(conn)
            for sql in scripts:
                await fixtures.load(conn, sql)
            return applied
        finally:
            await conn.close()

    applied = run_async(go())
    click.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")
    for path in files:
        click.echo(f"loaded {path}")


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"{what} {item!r} is not KEY=VALUE")
        out[key] = value
    return out


@main_group.command()
@click.option("--queue", "queue_id", type=int, help="The queue that fires the event.")
@click.option("--event", type=click.Choice(EVENTS), help="Which of the eight events.")
@click.option("--channel", type=click.Choice(["call", "chat", "task"]), default="call")
@click.option("--set", "fields", multiple=True, metavar="FIELD=VALUE", help="Override a field.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Member variable.")
@click.option(
    "--body", type=click.File("rb"), help="Send this file's bytes as they are (- for stdin)."
)
@click.option("--count", type=click.IntRange(1, 1_000_000), default=1, help="How many (new ids).")
@click.pass_context
def publish(
    ctx: click.Context, queue_id: int | None, event: str | None, channel: str,
    fields: tuple[str, ...], variables: tuple[str, ...], body: BinaryIO | None,
    count: int,
) -> None:  # fmt: skip
    """Publish a sample event (or a given body) to the events exchange."""
    cfg = settings(ctx)
    if body is not None:
        raw = body.read()
        if queue_id is None or event is None:
            try:
                parsed = orjson.loads(raw)
                queue_id = queue_id if queue_id is not None else int(parsed["queue_id"])
                event = event or str(parsed["event"])
            except Exception:
                raise CommandError("give --queue and --event for a body without them") from None
        bodies = [raw]
    else:
        if queue_id is None or event is None:
            raise CommandError("give --queue and --event (or --body FILE)")
        extra, members = _pairs(fields, "--set"), _pairs(variables, "--var")
        bodies = [
            orjson.dumps(sample_event(queue_id, event, channel, extra, members))
            for _ in range(count)
        ]
    key = t.routing_key(queue_id, event)
    sent = run_async(_publish(cfg, key, bodies))
    if len(bodies) == 1:
        click.echo(bodies[0].decode(errors="replace"))
    click.echo(f"published {sent} event(s) to {cfg.exchange} as {key}", err=True)


async def _publish(cfg: Settings, routing_key: str, bodies: list[bytes]) -> int:
    broker = Broker(
        cfg.amqp_url, cfg.exchange, cfg.retry_delays, prefetch=1,
        quorum_size=cfg.quorum_group_size,
    )  # fmt: skip
    await broker.connect(attempts=3)
    try:
        for raw in bodies:
            await broker.publish_event(routing_key, raw)
    finally:
        await broker.close()
    return len(bodies)


@main_group.command("demo-receiver")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8099, show_default=True)
@click.option("--secret", envvar="DEMO_RECEIVER_SECRET", help="Verify signatures with it.")
def demo_receiver(host: str, port: int, secret: str | None) -> None:
    """A small receiver that prints every delivery it gets (for demos)."""
    from worker.receiver import serve_demo

    try:
        run_async(serve_demo(host, port, secret))
    except KeyboardInterrupt:
        sys.exit(0)
