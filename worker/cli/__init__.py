"""`queue-hooks`: the one command-line program (contract §7).

Each group of commands lives in a module of its own; this one builds the settings once and
turns every expected failure into one clear line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import click
from pydantic import ValidationError

from worker import __version__
from worker.cli.base import CommandError, main_group
from worker.errors import Fatal, is_transient, one_line

# Importing registers each module's commands on the group.
from worker.cli import core as _core  # noqa: F401  isort: skip
from worker.cli import admin as _admin  # noqa: F401  isort: skip
from worker.cli import dlq as _dlq  # noqa: F401  isort: skip
from worker.cli import check as _check  # noqa: F401  isort: skip
from worker.cli import tokens as _tokens  # noqa: F401  isort: skip


def main(argv: list[str] | None = None) -> None:
    _check_text(sys.argv[1:] if argv is None else argv)
    try:
        code = main_group.main(args=argv, prog_name="queue-hooks", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        if isinstance(exc, click.exceptions.NoArgsIsHelpError):
            exc.show()  # a bare group: its help, as asked
        else:  # one line, like every other mistake
            where = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
            click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (CommandError, LookupError) as exc:
        click.echo(f"error: {str(exc).strip(chr(39))}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except Fatal as exc:  # a service that answers but refuses us for good: a wrong vhost, say
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(1)
    except ValidationError as exc:
        click.echo(f"error: bad setting: {_first_error(exc)}", err=True)
        sys.exit(2)
    except Exception as exc:
        if is_transient(exc):
            click.echo(f"error: cannot reach a service: {one_line(exc)}", err=True)
            sys.exit(3)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def _check_text(args: list[str]) -> None:
    """A byte that is not UTF-8 (a script in another encoding) reaches Python as a lone
    surrogate, which neither JSON nor the database takes: refused here, for every command."""
    for number, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            click.echo(
                f"error: argument {number} ({arg!r}) is not UTF-8 (at {exc.start})", err=True
            )
            sys.exit(2)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = "QUEUE_HOOKS_" + "_".join(str(p) for p in err["loc"]).upper()
    return f"{name}: {err['msg']}"


__all__ = ["__version__", "main"]
