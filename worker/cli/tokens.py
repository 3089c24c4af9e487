"""`api`, `tokens`, `grant`, `revoke-grant`: the admin API's process and who may use it
(contract §8, §9). The rules are the store's (worker/store/admin.py), as for the API."""

from __future__ import annotations

import click

from worker.api import rights
from worker.cli.admin import db as _db
from worker.cli.base import CommandError, main_group, settings
from worker.cli.inputs import ID
from worker.cli.output import echo_json, json_option, table
from worker.store import admin
from worker.store.admin import Conn, Row


@main_group.command()
@click.pass_context
def api(ctx: click.Context) -> None:
    """Serve the admin API and page (QUEUE_HOOKS_API_HOST, QUEUE_HOOKS_API_PORT)."""
    import uvicorn

    from worker.api.app import create_app

    conf = settings(ctx)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(conf), host=conf.api_host, port=conf.api_port, log_config=None,
            access_log=False, server_header=False, lifespan="on",
            # httptools: the C parser (h11, uvicorn's pure-Python fallback, was about 8 % of
            # the API's py-spy samples under the bench's mixed load); uvloop where installed.
            http="httptools", loop="auto",
        )
    )  # fmt: skip
    click.echo(f"queue-hooks api on http://{conf.api_host}:{conf.api_port}/", err=True)
    server.run()
    if not server.started:
        raise CommandError(f"the API could not listen on {conf.api_host}:{conf.api_port}")


@main_group.group()
def tokens() -> None:
    """Tokens of the admin API: each of one domain, admin or with per-queue grants."""


@tokens.command("add")
@click.option("--domain", type=ID, required=True, help="The domain it acts in.")
@click.option("--name", required=True, help="Who or what uses it (shown as updated_by).")
@click.option("--admin", "is_admin", is_flag=True, help="May do everything in its domain.")
@click.pass_context
def tokens_add(ctx: click.Context, domain: int, name: str, is_admin: bool) -> None:
    """Make a token; prints it once (only its hash is stored)."""
    if not name.strip():
        raise CommandError("--name cannot be empty")
    token = rights.new_token()

    async def work(conn: Conn) -> int:
        return await admin.add_token(conn, domain, name.strip(), is_admin, rights.digest(token))

    token_id = _db(ctx, work)
    kind = "admin token" if is_admin else "token (no rights until `queue-hooks grant`)"
    click.echo(f"added {kind} {token_id} {name.strip()!r} of domain {domain}")
    click.echo(f"token: {token}")
    click.echo("shown only this once: only its hash is stored")


def _grants_text(r: Row) -> str:
    if r["admin"]:
        return "all (admin)"
    grants = sorted((int(q), e) for q, e in r["grants"].items())
    return ", ".join(f"{q} {'edit' if e else 'read'}" for q, e in grants) or "-"


@tokens.command("list")
@json_option
@click.pass_context
def tokens_list(ctx: click.Context, as_json: bool) -> None:
    """List tokens (never the token itself)."""

    async def work(conn: Conn) -> list[Row]:
        return await admin.tokens(conn)

    rows = _db(ctx, work)
    if as_json:
        echo_json({"items": [
            {
                "id": r["id"], "domain_id": r["domain_id"], "name": r["name"], "admin": r["admin"],
                "grants": {q: ("edit" if e else "read") for q, e in sorted(r["grants"].items())},
                "created_at": r["created_at"], "revoked_at": r["revoked_at"],
            }
            for r in rows
        ]})  # fmt: skip
        return
    if rows:
        click.echo(table(
            ["ID", "DOMAIN", "NAME", "RIGHTS", "STATE"],
            [[r["id"], r["domain_id"], r["name"], _grants_text(r),
              "revoked" if r["revoked_at"] else "live"] for r in rows],
        ))  # fmt: skip
    click.echo(f"{len(rows)} token{'s' if len(rows) != 1 else ''}")


@tokens.command("revoke")
@click.argument("token_id", type=ID)
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke a token: refused from the next request on."""

    async def work(conn: Conn) -> bool:
        return await admin.revoke_token(conn, token_id)

    now = _db(ctx, work)
    click.echo(f"revoked token {token_id}" if now else f"token {token_id} was already revoked")


@main_group.command()
@click.option("--token", "token_id", type=ID, required=True)
@click.option("--queue", "queue_id", type=ID, required=True)
@click.option("--read", "right", flag_value="read", help="May read the queue's hooks.")
@click.option("--edit", "right", flag_value="edit", help="May also change them.")
@click.pass_context
def grant(ctx: click.Context, token_id: int, queue_id: int, right: str | None) -> None:
    """Give a token read or edit on one queue of its domain (--edit implies read)."""
    if right is None:
        raise CommandError("give --read or --edit")

    async def work(conn: Conn) -> Row:
        return await admin.grant(conn, token_id, queue_id, right == "edit")

    token = _db(ctx, work)
    click.echo(f"token {token_id} {token['name']!r} may {right} queue {queue_id}")


@main_group.command("revoke-grant")
@click.option("--token", "token_id", type=ID, required=True)
@click.option("--queue", "queue_id", type=ID, required=True)
@click.pass_context
def revoke_grant(ctx: click.Context, token_id: int, queue_id: int) -> None:
    """Take a token's rights on one queue away."""

    async def work(conn: Conn) -> bool:
        return await admin.revoke_grant(conn, token_id, queue_id)

    had = _db(ctx, work)
    click.echo(
        f"token {token_id} no longer has rights on queue {queue_id}" if had
        else f"token {token_id} had no rights on queue {queue_id}"
    )  # fmt: skip
