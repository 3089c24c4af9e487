"""`queue-hooks dlq list|show|replay|purge`: look at and repair what the worker gave up on.

The AMQP side (reading without consuming, moving with confirm-then-ack) is worker/broker/dlq.py;
this module decides what to show and what to move, and says so in plain lines.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args

import click
import orjson

from worker.broker import topology as t
from worker.broker.dlq import DeadLetter, DeadLetterQueue, MoveFailed, NoDeadQueue, Scan
from worker.cli.base import CommandError, main_group, run_async, settings
from worker.cli.output import shown
from worker.policy import DeadReason, not_its_hook
from worker.settings import Settings

if TYPE_CHECKING:
    from worker.store.lookup import HookState

REASONS = get_args(DeadReason)


@dataclass(frozen=True)
class Filter:
    reason: str | None = None
    hook_id: int | None = None
    event_id: str | None = None

    def __call__(self, letter: DeadLetter) -> bool:
        return (
            (self.reason is None or letter.reason == self.reason)
            and (self.hook_id is None or letter.hook_id == self.hook_id)
            and (self.event_id is None or letter.event_id == self.event_id)
        )

    def describe(self) -> str:
        parts = [
            f"{name} {value}"
            for name, value in (
                ("reason", self.reason), ("hook", self.hook_id), ("event id", self.event_id)
            )
            if value is not None
        ]  # fmt: skip
        return f" ({', '.join(parts)})" if parts else ""


def _open(cfg: Settings) -> DeadLetterQueue:
    return DeadLetterQueue(cfg.amqp_url, cfg.exchange)


# -- the work, as coroutines the tests call too ------------------------------------------------
async def read_letters(
    cfg: Settings, keep: Filter, limit: int | None = None
) -> tuple[list[DeadLetter], int]:
    """The first `limit` matching letters, head first, and the queue's depth. Takes nothing."""
    found: list[DeadLetter] = []
    async with _open(cfg) as dlq, dlq.scan() as scan:
        async for letter in scan.letters():
            if keep(letter):
                found.append(letter)
                if limit is not None and len(found) >= limit:
                    break
        return found, scan.depth


async def read_one(cfg: Settings, position: int) -> tuple[DeadLetter | None, int]:
    async with _open(cfg) as dlq, dlq.scan() as scan:
        async for letter in scan.letters():
            if letter.position == position:
                return letter, scan.depth
        return None, scan.depth


@dataclass
class ReplayReport:
    replayed: int = 0
    kept: list[str] = field(default_factory=list)  # one line per letter left in the queue
    invalid_skipped: int = 0


async def replay(
    cfg: Settings,
    keep: Filter,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    include_invalid: bool = False,
    say: Callable[[str], None] = lambda _line: None,
) -> ReplayReport:
    from worker.store.lookup import hook_states

    states = await hook_states(cfg.database_url)
    report = ReplayReport()
    async with _open(cfg) as dlq, dlq.scan() as scan:
        async for letter in scan.letters():
            if limit is not None and report.replayed >= limit:
                break
            if not keep(letter):
                continue
            if letter.reason == "invalid" and not include_invalid:
                report.invalid_skipped += 1
                continue
            why = _why_not(letter, states)
            if why is not None:
                report.kept.append(f"kept #{letter.position}: {why}")
                say(report.kept[-1])
                continue
            if not dry_run:
                await _send_back(scan, letter)
            say(f"{'would replay' if dry_run else 'replayed'} #{letter.position}: {_brief(letter)}")
            report.replayed += 1
    return report


def _why_not(letter: DeadLetter, states: dict[int, HookState]) -> str | None:
    """Why this letter cannot go back now, or None when it can."""
    if letter.reason == "invalid":
        return None
    hook = letter.hook_id
    if hook is None:
        return f"no {t.H_HOOK_ID} header: not a delivery this worker can retry"
    state = states.get(hook)
    if state is None:
        return f"hook {hook} no longer exists"
    if not state.enabled:
        return f"hook {hook} is disabled (enable it, then replay again)"
    # The worker would not send it either (Pipeline.on_retry): the same rule, said here.
    made_for = (letter.queue_id or 0, letter.event or "")
    return not_its_hook(hook, made_for, (state.queue_id, state.event))


async def _send_back(scan: Scan, letter: DeadLetter) -> None:
    if letter.reason == "invalid":
        await scan.to_events(letter, letter.routing_key or _key_from_body(letter.body))
    else:
        await scan.to_retry(letter)


def _key_from_body(body: bytes) -> str:
    """Where an invalid event would have come from; the worker reads the body, not the key,
    so any key under the binding `queue.#` reaches it."""
    try:
        parsed = orjson.loads(body)
        queue, event = parsed.get("queue_id"), parsed.get("event")
    except (orjson.JSONDecodeError, AttributeError, UnicodeDecodeError):
        queue = event = None
    queue = queue if isinstance(queue, int | str) and str(queue).isdigit() else 0
    event = event if isinstance(event, str) and event.isidentifier() else "unknown"
    return t.routing_key(queue, event)


async def purge(cfg: Settings, keep: Filter, confirm: Callable[[int], bool]) -> int:
    """Deletes the matching letters once `confirm(count)` says yes; returns how many went.
    Exactly the letters counted are deleted: they are held (unacked) while the question waits."""
    async with _open(cfg) as dlq, dlq.scan() as scan:
        chosen = [letter async for letter in scan.letters() if keep(letter)]
        if not chosen or not await asyncio.to_thread(confirm, len(chosen)):
            return 0
        for letter in chosen:
            await scan.drop(letter)
        return len(chosen)


# -- presentation ---------------------------------------------------------------------------
def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if s >= size:
            return f"{s // size}{unit}{(s % size) // subsize:02d}{sub}"
    return f"{s // 60}m" if s >= 60 else f"{s}s"


def _brief(letter: DeadLetter) -> str:
    what = f"hook {letter.hook_id}" if letter.hook_id is not None else "event"
    return f"{letter.reason}, {what}, event id {letter.event_id or '?'}"


def _as_dict(letter: DeadLetter, now: datetime) -> dict[str, Any]:
    return {
        "position": letter.position,
        "reason": letter.reason,
        "error": letter.error,
        "event_id": letter.event_id,
        "event": letter.event,
        "queue_id": letter.queue_id,
        "hook_id": letter.hook_id,
        "attempts": letter.attempts,
        "dead_at": letter.dead_at.isoformat() if letter.dead_at else None,
        "age_seconds": letter.age(now),
    }


def _table(letters: list[DeadLetter], now: datetime) -> list[str]:
    lines = [
        f"{'#':>5}  {'REASON':<9}  {'HOOK':>6}  {'TRIES':>5}  {'AGE':>7}  {'EVENT ID':<36}  ERROR"
    ]
    for x in letters:
        hook = "-" if x.hook_id is None else str(x.hook_id)
        tries = "-" if x.attempts is None else str(x.attempts)
        lines.append(
            f"{x.position:>5}  {x.reason:<9}  {hook:>6}  {tries:>5}  {_age(x.age(now)):>7}"
            f"  {shown(x.event_id or '-'):<36}  {shown(x.error)}"
        )
    return lines


def _pretty_body(letter: DeadLetter) -> str:
    try:
        return orjson.dumps(orjson.loads(letter.body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return letter.body.decode(errors="replace") + "\n(the body is not valid JSON)"


def _headers_block(letter: DeadLetter, now: datetime) -> list[str]:
    when = letter.dead_at.isoformat() if letter.dead_at else "unknown"
    lines = [
        f"dead since:   {when} ({_age(letter.age(now))} ago)",
        f"content type: {letter.content_type or '-'}",
        "headers:",
    ]
    for name in sorted(letter.headers):
        value = letter.headers[name]
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        lines.append(f"  {shown(name)}: {shown(text)}")
    return lines


# -- the commands ---------------------------------------------------------------------------
def _run(coro: Any) -> Any:
    try:
        return run_async(coro)
    except (NoDeadQueue, MoveFailed) as exc:
        raise CommandError(str(exc)) from None


reason_option = click.option("--reason", type=click.Choice(REASONS), help="Only this reason.")
hook_option = click.option("--hook", "hook_id", type=int, metavar="ID", help="Only this hook.")


@main_group.group()
def dlq() -> None:
    """Dead letters: list, show, replay, purge (queue-hooks.dead)."""


@dlq.command("list")
@reason_option
@hook_option
@click.option(
    "--limit", "--count", "limit", type=click.IntRange(min=1), default=100, show_default=True,
    help="List at most this many (--count: the contract's word).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.pass_context
def list_(
    ctx: click.Context, reason: str | None, hook_id: int | None, limit: int, as_json: bool
) -> None:
    """Show dead letters, oldest first, without taking them off the queue."""
    keep = Filter(reason, hook_id)
    letters, depth = _run(read_letters(settings(ctx), keep, limit))
    now = datetime.now(UTC)
    if as_json:
        click.echo(orjson.dumps([_as_dict(x, now) for x in letters]).decode())
    elif letters:
        click.echo("\n".join(_table(letters, now)))
    click.echo(f"{len(letters)} shown{keep.describe()}; {depth} in {t.DEAD_QUEUE}", err=True)


@dlq.command()
@click.argument("position", type=click.IntRange(min=1), metavar="N")
@click.option("--raw", is_flag=True, help="Write only the body, byte for byte.")
@click.pass_context
def show(ctx: click.Context, position: int, raw: bool) -> None:
    """Print dead letter N (its # in `dlq list`) whole, body included."""
    letter, depth = _run(read_one(settings(ctx), position))
    if letter is None:
        raise CommandError(f"there is no dead letter #{position} ({depth} in {t.DEAD_QUEUE})")
    if raw:
        sys.stdout.buffer.write(letter.body)
        sys.stdout.buffer.flush()
        return
    now = datetime.now(UTC)
    click.echo(f"dead letter #{position} of {depth} in {t.DEAD_QUEUE}")
    click.echo(f"reason:       {shown(letter.reason)}")
    click.echo(f"error:        {shown(letter.error)}")
    click.echo("\n".join(_headers_block(letter, now)))
    click.echo(f"body ({len(letter.body)} bytes):")
    click.echo(_pretty_body(letter))


@dlq.command("replay")
@reason_option
@hook_option
@click.option("--event-id", help="Only the letters of this event.")
@click.option(
    "--limit", "--count", "limit", type=click.IntRange(min=1),
    help="Replay at most this many (--count: the contract's word).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say what would go back; move nothing.")
@click.option(
    "--include-invalid", is_flag=True,
    help="Also send invalid events back to the events exchange (after a fix upstream).",
)  # fmt: skip
@click.pass_context
def replay_cmd(
    ctx: click.Context, reason: str | None, hook_id: int | None, event_id: str | None,
    limit: int | None, dry_run: bool, include_invalid: bool,
) -> None:  # fmt: skip
    """Send failed deliveries back for a fresh series of attempts."""
    keep = Filter(reason, hook_id, event_id)
    report: ReplayReport = _run(
        replay(
            settings(ctx),
            keep,
            limit=limit,
            dry_run=dry_run,
            include_invalid=include_invalid,
            say=click.echo,
        )
    )
    verb = "would replay" if dry_run else "replayed"
    summary = f"{verb} {report.replayed} dead letter(s){keep.describe()}"
    if report.kept:
        summary += f"; {len(report.kept)} kept (their hook is disabled or gone)"
    if report.invalid_skipped:
        summary += f"; {report.invalid_skipped} invalid event(s) left (--include-invalid)"
    click.echo(summary)


@dlq.command("purge")
@reason_option
@hook_option
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.pass_context
def purge_cmd(ctx: click.Context, reason: str | None, hook_id: int | None, yes: bool) -> None:
    """Delete dead letters for good, after asking."""
    keep = Filter(reason, hook_id)

    def confirm(count: int) -> bool:
        question = f"delete {count} dead letter(s){keep.describe()} for good?"
        return yes or click.confirm(question, default=False, err=True)

    deleted = _run(purge(settings(ctx), keep, confirm))
    click.echo(f"deleted {deleted} dead letter(s){keep.describe()}" if deleted else "deleted none")
