"""The root group and what every command shares: settings, logging, running a coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from worker import __version__, logs
from worker.settings import Settings

T = TypeVar("T")


class CommandError(Exception):
    """A mistake of the user's or a refusal: one line on stderr, a non-zero exit."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="queue-hooks")
@click.pass_context
def main_group(ctx: click.Context) -> None:
    """queue-hooks: queue events to signed webhooks, with retries and dead letters."""
    try:
        ctx.obj = Settings()
    except UnicodeDecodeError as exc:  # pydantic-settings reads .env as UTF-8
        raise CommandError(f"bad setting: .env is not UTF-8 (byte {exc.start})", 2) from None
    logs.configure(ctx.obj.log_format, ctx.obj.log_level)


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is not built for every platform
        return asyncio.run(coro)
