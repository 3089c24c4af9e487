"""`hooks`, `schemas`, `queues`: what the platform's queue hooks page does, from a shell.

Every command is one transaction. The checks here come first so that a mistake is named in
the admin's terms (which queue, which events it fires, which schemas matched); the database's
own rules (contract §2, §4) stay the last word, and a refusal of theirs is shown in its words.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from schemas.queue_types import EVENTS, LABELS_RU, QUEUE_TYPES, events_fired
from worker import secrets
from worker.cli import inputs
from worker.cli.base import CommandError, main_group, run_async, settings
from worker.cli.inputs import ID, ids_text
from worker.cli.output import Page, echo_json, json_option, paging, table
from worker.store import admin
from worker.store.admin import Conn, Row

T = TypeVar("T")
EVENT = click.Choice(EVENTS)


def db(ctx: click.Context, work: Callable[[Conn], Awaitable[T]]) -> T:
    async def go() -> T:
        async with admin.session(settings(ctx).database_url) as conn:
            return await work(conn)

    try:
        return run_async(go())
    except admin.Refused as exc:
        raise CommandError(str(exc)) from None


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


# -- lookups and rules: worker/store/admin.py, shared with the API ---------------------------------
_queue, _schema, _hooks = admin.require_queue, admin.require_schema, admin.require_hooks


def _named(rows: list[Row], domains: bool = False) -> str:
    shown = [
        f"{r['id']} {r['name']!r}" + (f" (domain {r['domain_id']})" if domains else "")
        for r in rows[:20]
    ]
    more = f" and {len(rows) - 20} more" if len(rows) > 20 else ""
    return ", ".join(shown) + more


async def _pick_schema(conn: Conn, ref: str, queue: Row) -> Row:
    """A schema by id, else by name: the whole name (any case) or, failing that, part of it,
    within the queue's domain, as the platform's schema picker searches."""
    domain = queue["domain_id"]
    # str.isdigit alone passes "²", which int refuses; beyond bigint no id can be (the
    # database refused the query in its own words), so it may still be a name.
    if ref.isascii() and ref.isdigit() and int(ref) < 1 << 63:
        row = await admin.schema(conn, int(ref))
        if row is not None:
            admin.check_domain(queue, row)
            return row
    found = await admin.schemas(conn, ref, domain)
    whole = [r for r in found if r["name"].casefold() == ref.casefold()]
    if len(whole or found) == 1:
        return (whole or found)[0]
    if found:
        raise CommandError(
            f"{len(whole or found)} schemas of domain {domain} match {ref!r}: "
            f"{_named(whole or found)}; nothing changed: give the id or the whole name"
        )
    what = f"no schema {'with id or name' if ref.isdigit() else 'named like'} {ref!r}"
    elsewhere = await admin.schemas(conn, ref, None, limit=21)
    tail = f"; in other domains: {_named(elsewhere, domains=True)}" if elsewhere else ""
    raise CommandError(f"{what} in domain {domain} (queue {queue['id']}'s domain){tail}")


# -- hooks -------------------------------------------------------------------------------------
@main_group.group()
def hooks() -> None:
    """A queue's hooks: which schema each of its events calls."""


def _hook_json(r: Row, labels: str) -> dict[str, Any]:
    out = {
        "id": r["id"], "queue_id": r["queue_id"], "event": r["event"],
        "schema_id": r["schema_id"], "schema_name": r["schema_name"], "enabled": r["enabled"],
        "created_at": r["created_at"], "updated_at": r["updated_at"],
    }  # fmt: skip
    if labels == "ru":
        out["label"] = LABELS_RU[r["event"]]
    return out


def _hook_table(rows: list[Row], labels: str = "none", queue: bool = False) -> str:
    head = ["ID", *(["QUEUE"] if queue else []), "EVENT", *(["LABEL"] if labels == "ru" else [])]
    return table(
        [*head, "SCHEMA", "SCHEMA ID", "STATE"],
        [
            [
                r["id"], *([r["queue_id"]] if queue else []), r["event"],
                *([LABELS_RU[r["event"]]] if labels == "ru" else []),
                r["schema_name"], r["schema_id"], "enabled" if r["enabled"] else "disabled",
            ]
            for r in rows
        ],
    )  # fmt: skip


@hooks.command("list")
@click.option("--queue", "queue_id", type=ID, required=True, help="The queue whose hooks.")
@click.option("--event", type=EVENT, help="Only this event's hooks.")
@click.option("--enabled/--disabled", "enabled", default=None, help="Only enabled (disabled).")
@click.option(
    "--labels", type=click.Choice(["none", "ru"]), default="none", show_default=True,
    help="Also show each event's label (ru: as on the platform's page).",
)  # fmt: skip
@paging
@json_option
@click.pass_context
def hooks_list(
    ctx: click.Context, queue_id: int, event: str | None, enabled: bool | None, labels: str,
    page: int, size: int, as_json: bool,
) -> None:  # fmt: skip
    """List a queue's hooks, a page at a time."""

    async def work(conn: Conn) -> tuple[Row, Page]:
        queue = await _queue(conn, queue_id)
        total = await admin.count_hooks(conn, queue_id, event, enabled)
        rows = await admin.hooks(conn, queue_id, event, enabled, (page - 1) * size, size)
        return queue, Page(rows, page, size, total)

    queue, found = db(ctx, work)
    if as_json:
        echo_json(found.as_json([_hook_json(r, labels) for r in found.rows]))
        return
    kind = QUEUE_TYPES[queue["type"]]
    click.echo(f"queue {queue_id} {queue['name']!r} ({kind}, domain {queue['domain_id']})")
    if found.rows:
        click.echo(_hook_table(found.rows, labels))
    click.echo(found.note("hooks"))


@hooks.command("add")
@click.option("--queue", "queue_id", type=ID, required=True, help="The queue that fires it.")
@click.option("--event", type=EVENT, required=True, help="Which of the eight events.")
@click.option("--schema", "ref", required=True, metavar="NAME|ID", help="What it calls.")
@click.option("--disabled", is_flag=True, help="Add it switched off.")
@click.pass_context
def hooks_add(ctx: click.Context, queue_id: int, event: str, ref: str, disabled: bool) -> None:
    """Add a hook: on EVENT of the queue, call the schema.

    A schema given by name is looked for in the queue's domain: its whole name in any case,
    else part of it. When several match, they are listed and nothing is added.
    """

    async def work(conn: Conn) -> tuple[int, Row]:
        queue = await _queue(conn, queue_id)
        admin.check_fires(queue, event)
        schema = await _pick_schema(conn, ref.strip(), queue)
        await admin.check_hook(conn, queue, event, schema)
        return await admin.add_hook(conn, queue_id, event, schema["id"], not disabled), schema

    hook_id, schema = db(ctx, work)
    state = "disabled" if disabled else "enabled"
    click.echo(
        f'added hook {hook_id}: on "{event}" of queue {queue_id} call schema {schema["id"]} '
        f"{schema['name']!r} ({state})"
    )


@hooks.command("edit")
@click.argument("hook_id", type=ID)
@click.option("--schema", "ref", metavar="NAME|ID", help="Call this schema instead.")
@click.option("--event", type=EVENT, help="Hook this event instead.")
@click.pass_context
def hooks_edit(ctx: click.Context, hook_id: int, ref: str | None, event: str | None) -> None:
    """Change which schema a hook calls, or on which event."""
    if ref is None and event is None:
        raise CommandError("nothing to change: give --schema and/or --event")

    async def work(conn: Conn) -> tuple[Row, str, Row]:
        (hook,) = await _hooks(conn, (hook_id,))
        queue = await _queue(conn, hook["queue_id"])
        new_event = event or hook["event"]
        admin.check_fires(queue, new_event)
        schema = await (
            _pick_schema(conn, ref.strip(), queue) if ref else _schema(conn, hook["schema_id"])
        )
        await admin.check_hook(conn, queue, new_event, schema, hook_id)
        await admin.edit_hook(conn, hook_id, new_event, schema["id"])
        return hook, new_event, schema

    old, new_event, schema = db(ctx, work)
    click.echo(
        f'hook {hook_id} of queue {old["queue_id"]}: on "{new_event}" call schema '
        f'{schema["id"]} {schema["name"]!r} (was: on "{old["event"]}" schema '
        f"{old['schema_id']} {old['schema_name']!r})"
    )


def _switch(ctx: click.Context, ids: tuple[int, ...], enabled: bool) -> None:
    async def work(conn: Conn) -> list[int]:
        await _hooks(conn, ids)
        return await admin.set_enabled(conn, ids, enabled)

    changed = db(ctx, work)
    verb = "enabled" if enabled else "disabled"
    already = sorted(set(ids) - set(changed))
    if changed:
        click.echo(f"{verb} {ids_text(changed)}")
    if already:
        click.echo(f"{ids_text(already)} {'was' if len(already) == 1 else 'were'} already {verb}")


@hooks.command("enable")
@click.argument("ids", type=ID, nargs=-1, required=True)
@click.pass_context
def hooks_enable(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Switch hooks on (several at once)."""
    _switch(ctx, ids, True)


@hooks.command("disable")
@click.argument("ids", type=ID, nargs=-1, required=True)
@click.pass_context
def hooks_disable(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Switch hooks off (several at once); they stay listed."""
    _switch(ctx, ids, False)


@hooks.command("delete")
@click.argument("ids", type=ID, nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask (needed without a terminal).")
@click.pass_context
def hooks_delete(ctx: click.Context, ids: tuple[int, ...], yes: bool) -> None:
    """Delete hooks (several at once); shows them and asks first, unless --yes."""

    async def selected(conn: Conn) -> list[Row]:
        return await _hooks(conn, ids)

    rows = db(ctx, selected)
    count = f"{len(rows)} hook{'s' if len(rows) != 1 else ''}"
    if not yes:
        if not sys.stdin.isatty():
            raise CommandError(
                f"refusing to delete {ids_text(ids)} without --yes: no terminal to ask on"
            )
        click.echo(f"{count} selected:")
        click.echo(_hook_table(rows, queue=True))
        if not click.confirm(f"Delete {'these' if len(rows) != 1 else 'this'} {count}?"):
            raise CommandError("nothing deleted")

    async def delete(conn: Conn) -> list[int]:
        return await admin.delete_hooks(conn, ids)

    deleted = db(ctx, delete)
    gone = sorted(set(ids) - set(deleted))
    click.echo(f"deleted {ids_text(deleted)}" if deleted else "deleted nothing")
    if gone:
        click.echo(f"{ids_text(gone)}: already deleted meanwhile")


# -- schemas -----------------------------------------------------------------------------------
@main_group.group()
def schemas() -> None:
    """Schemas: where hooks send their calls (URL, secret, headers, timeout)."""


def _secret_state(stored: str | None) -> str:
    if stored is None:
        return "none"
    return "encrypted" if stored.startswith(secrets.PREFIX) else "plain"


def _schema_json(r: Row) -> dict[str, Any]:
    return {
        "id": r["id"], "domain_id": r["domain_id"], "name": r["name"], "url": r["url"],
        "timeout_ms": r["timeout_ms"], "headers": sorted(r["headers"]),
        "max_per_second": r["max_per_second"],
        "secret": _secret_state(r["secret"]),
        "previous_secret_until": r["previous_secret_until"] if r["rotating"] else None,
        "hooks": r["hooks"],
    }  # fmt: skip


def _secret_cell(r: Row) -> str:
    state = _secret_state(r["secret"])
    return f"{state}, old one until {_when(r['previous_secret_until'])}" if r["rotating"] else state


@schemas.command("list")
@click.option("--search", help="Only schemas whose name holds this (any case).")
@click.option("--domain", type=ID, help="Only this domain's schemas.")
@paging
@json_option
@click.pass_context
def schemas_list(
    ctx: click.Context, search: str | None, domain: int | None, page: int, size: int,
    as_json: bool,
) -> None:  # fmt: skip
    """List schemas (never their secrets: only whether they have one)."""

    async def work(conn: Conn) -> Page:
        total = await admin.count_schemas(conn, search, domain)
        rows = await admin.schemas(conn, search, domain, (page - 1) * size, size)
        return Page(rows, page, size, total)

    found = db(ctx, work)
    if as_json:
        echo_json(found.as_json([_schema_json(r) for r in found.rows]))
        return
    if found.rows:
        rows = [
            [
                r["id"], r["domain_id"], r["name"], r["url"], f"{r['timeout_ms']} ms",
                ", ".join(sorted(r["headers"])) or "-", _secret_cell(r), r["hooks"],
            ]
            for r in found.rows
        ]  # fmt: skip
        head = ["ID", "DOMAIN", "NAME", "URL", "TIMEOUT", "HEADERS", "SECRET", "HOOKS"]
        click.echo(table(head, rows))
    click.echo(found.note("schemas"))


def _secret_key(ctx: click.Context) -> str | None:
    key = settings(ctx).secret_key
    return key.get_secret_value() if key else None


def _check_target(ctx: click.Context, url: str) -> None:
    try:
        admin.check_target(url, settings(ctx).allow_private_targets)
    except admin.Refused as exc:
        raise CommandError(f"{exc}; nothing saved") from None


def _show_secret(secret: str, key: str | None) -> None:
    click.echo(f"secret: {secret}")
    click.echo("shown only this once: give it to the receiver, to verify the signatures")
    if key:
        click.echo("(stored encrypted with QUEUE_HOOKS_SECRET_KEY)")
    else:
        click.echo("(stored unencrypted: set QUEUE_HOOKS_SECRET_KEY to store secrets encrypted)")


_RATE = float  # checked by values.max_per_second, the rule the API applies too
_RATE_HELP = "Deliveries a second its receiver takes, shared by all workers (docs/receivers.md)."


@schemas.command("add")
@click.option("--domain", type=ID, required=True, help="The domain whose queues may call it.")
@click.option("--name", required=True, help="Unique within the domain.")
@click.option("--url", "target", required=True, help="http:// or https:// URL to POST to.")
@click.option(
    "--timeout-ms", type=click.IntRange(1, 600_000), default=10_000, show_default=True,
    help="For the whole of one attempt.",
)  # fmt: skip
@click.option("--header", "header", multiple=True, metavar="NAME=VALUE", help="Static header.")
@click.option("--secret", "given", metavar="whsec_...", help="Use this secret, not a new one.")
@click.option("--no-secret", is_flag=True, help="Unsigned calls (no webhook-signature).")
@click.option("--max-per-second", type=_RATE, help=_RATE_HELP + " Default: no limit.")
@click.pass_context
def schemas_add(
    ctx: click.Context, domain: int, name: str, target: str, timeout_ms: int,
    header: tuple[str, ...], given: str | None, no_secret: bool, max_per_second: float | None,
) -> None:  # fmt: skip
    """Add a schema; prints its new signing secret once."""
    if given and no_secret:
        raise CommandError("give --secret or --no-secret, not both")
    if not name.strip():
        raise CommandError("--name cannot be empty")
    url, extra = inputs.url(target), inputs.headers(header)
    rate = inputs.max_per_second(max_per_second)
    _check_target(ctx, url)
    secret = None if no_secret else inputs.secret(given) if given else secrets.generate()
    key = _secret_key(ctx)
    stored = secrets.seal(secret, key) if secret else None

    async def work(conn: Conn) -> int:
        return await admin.add_schema(
            conn, domain, name.strip(), url, timeout_ms, extra, stored, rate
        )

    schema_id = db(ctx, work)
    click.echo(f"added schema {schema_id} {name.strip()!r} in domain {domain}: POST {url}")
    if secret and not given:
        _show_secret(secret, key)
    elif not secret:
        click.echo("no secret: its calls are not signed")


@schemas.command("edit")
@click.argument("schema_id", type=ID)
@click.option("--name", help="A new name (unique within the domain).")
@click.option("--url", "target", help="A new URL.")
@click.option("--timeout-ms", type=click.IntRange(1, 600_000), help="A new timeout.")
@click.option("--header", "header", multiple=True, metavar="NAME=VALUE", help="Set a header.")
@click.option("--clear-headers", is_flag=True, help="Drop all headers (before any --header).")
@click.option("--max-per-second", type=_RATE, help=_RATE_HELP)
@click.option("--no-rate-limit", is_flag=True, help="Drop its rate limit.")
@click.pass_context
def schemas_edit(
    ctx: click.Context, schema_id: int, name: str | None, target: str | None,
    timeout_ms: int | None, header: tuple[str, ...], clear_headers: bool,
    max_per_second: float | None, no_rate_limit: bool,
) -> None:  # fmt: skip
    """Change a schema's name, URL, timeout or headers (its secret: rotate-secret)."""
    changes: dict[str, Any] = {}
    if name is not None:
        if not name.strip():
            raise CommandError("--name cannot be empty")
        changes["name"] = name.strip()
    if target is not None:
        changes["url"] = inputs.url(target)
        _check_target(ctx, changes["url"])
    if timeout_ms is not None:
        changes["timeout_ms"] = timeout_ms
    if max_per_second is not None and no_rate_limit:
        raise CommandError("give --max-per-second or --no-rate-limit, not both")
    if max_per_second is not None or no_rate_limit:
        changes["max_per_second"] = inputs.max_per_second(max_per_second)
    given = inputs.headers(header)
    if not changes and not given and not clear_headers:
        raise CommandError(
            "nothing to change: give --name, --url, --timeout-ms, --max-per-second or headers"
        )

    async def work(conn: Conn) -> Row:
        row = await _schema(conn, schema_id)
        if given or clear_headers:
            # Header names are case-insensitive: a new X-Key replaces an old x-key.
            kept = {} if clear_headers else dict(row["headers"])
            lowered = {k.lower() for k in given}
            changes["headers"] = {k: v for k, v in kept.items() if k.lower() not in lowered}
            changes["headers"].update(given)
        await admin.edit_schema(conn, schema_id, changes)
        return row

    row = db(ctx, work)
    click.echo(f"changed schema {schema_id} {row['name']!r}: {', '.join(sorted(changes))}")


@schemas.command("rotate-secret")
@click.argument("schema_id", type=ID)
@click.option(
    "--grace", metavar="DURATION",
    help="How long the previous secret still signs too [default: QUEUE_HOOKS_SECRET_GRACE, 24h].",
)  # fmt: skip
@click.option("--secret", "given", metavar="whsec_...", help="Use this secret, not a new one.")
@click.pass_context
def schemas_rotate_secret(
    ctx: click.Context, schema_id: int, grace: str | None, given: str | None
) -> None:
    """Give a schema a new secret, printed once. During the grace period every call carries
    two signatures, the new secret's and the previous one's, so the receiver can switch
    without losing a call."""
    seconds = settings(ctx).secret_grace if grace is None else inputs.duration(grace)
    secret = inputs.secret(given) if given else secrets.generate()
    key = _secret_key(ctx)

    async def work(conn: Conn) -> tuple[Row, datetime | None]:
        row = await _schema(conn, schema_id)
        until = await admin.rotate_secret(conn, schema_id, secrets.seal(secret, key), seconds)
        return row, until

    row, until = db(ctx, work)
    click.echo(f"new secret for schema {schema_id} {row['name']!r}")
    if not given:
        _show_secret(secret, key)
    if until is not None:
        click.echo(f"the previous secret also signs until {_when(until)}")
    elif row["secret"] is None:
        click.echo("it had no secret: its calls are signed from now on")
    else:
        click.echo("the previous secret no longer signs")


@schemas.command("delete")
@click.argument("schema_id", type=ID)
@click.pass_context
def schemas_delete(ctx: click.Context, schema_id: int) -> None:
    """Delete a schema that no hook uses."""

    async def work(conn: Conn) -> Row:
        row = await _schema(conn, schema_id)
        await admin.check_unused(conn, row)
        await admin.delete_schema(conn, schema_id)
        return row

    row = db(ctx, work)
    click.echo(f"deleted schema {schema_id} {row['name']!r}")


# -- queues ------------------------------------------------------------------------------------
@main_group.group()
def queues() -> None:
    """Queues as the platform numbers them: domain, type (which events fire), variables."""


@queues.command("list")
@click.option("--domain", type=ID, help="Only this domain's queues.")
@paging
@json_option
@click.pass_context
def queues_list(
    ctx: click.Context, domain: int | None, page: int, size: int, as_json: bool
) -> None:
    """List queues."""

    async def work(conn: Conn) -> Page:
        total = await admin.count_queues(conn, domain)
        rows = await admin.queues(conn, domain, (page - 1) * size, size)
        return Page(rows, page, size, total)

    found = db(ctx, work)
    if as_json:
        items = [
            {
                "id": r["id"], "domain_id": r["domain_id"], "name": r["name"], "type": r["type"],
                "type_name": QUEUE_TYPES[r["type"]], "variables": r["variables"],
                "hooks": r["hooks"],
            }
            for r in found.rows
        ]  # fmt: skip
        echo_json(found.as_json(items))
        return
    if found.rows:
        rows = [
            [
                r["id"], r["domain_id"], r["name"], f"{r['type']} {QUEUE_TYPES[r['type']]}",
                ", ".join(f"{k}={v}" for k, v in sorted(r["variables"].items())) or "-",
                r["hooks"],
            ]
            for r in found.rows
        ]  # fmt: skip
        click.echo(table(["ID", "DOMAIN", "NAME", "TYPE", "VARIABLES", "HOOKS"], rows))
    click.echo(found.note("queues"))


@queues.command("add")
@click.option("--id", "queue_id", type=ID, required=True, help="The platform's queue id.")
@click.option("--domain", type=ID, required=True)
@click.option("--name", required=True)
@click.option("--type", "kind", required=True, metavar="0..7|NAME", help="1 or 'inbound queue'.")
@click.option("--var", "var", multiple=True, metavar="NAME=VALUE", help="A queue variable.")
@click.pass_context
def queues_add(
    ctx: click.Context, queue_id: int, domain: int, name: str, kind: str, var: tuple[str, ...]
) -> None:
    """Add a queue, with its variables (sent with every event of its hooks)."""
    queue_type, variables = inputs.queue_type(kind), inputs.pairs(var, "--var")

    async def work(conn: Conn) -> None:
        await admin.add_queue(conn, queue_id, domain, name, queue_type, variables)

    db(ctx, work)
    click.echo(
        f"added queue {queue_id} {name!r} ({QUEUE_TYPES[queue_type]}, domain {domain}); "
        f"it fires: {', '.join(events_fired(queue_type))}"
    )
