"""structlog set-up: JSON lines by default, console for people (`make run`)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from typing import TextIO

import orjson
import structlog


def _dumps(obj: object, default: object = None) -> str:
    return orjson.dumps(obj, default=default).decode()  # type: ignore[arg-type]


_tracebacks = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


FLUSH_EVERY = 0.005  # seconds


class LineWriter:
    """structlog's logger: lines gathered for 5 ms and written together, not one write(2) each.

    A busy worker logs a line per delivery, thousands a second; one write per line cost about
    1-3 % of its CPU (a few us a line), and one per loop turn still made a write for every
    two deliveries or so (`strace -c`: as many writes of log lines as turns of the loop).
    Lines reach stderr in order, at most 5 ms late; what is gathered is written at exit too.
    Outside a running loop (start-up, the CLI) each line is written at once. Kept because it
    pays: against structlog's own WriteLoggerFactory (a write and a flush a line), worker CPU
    per delivery 173 / 187 / 201 us against 185 / 225 / 206 in three alternated `make bench`
    end-to-end runs (docs/performance.md).
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lines: list[str] = []
        self._due: asyncio.AbstractEventLoop | None = None  # the loop a flush is due on

    def msg(self, message: str) -> None:
        self._lines.append(message)
        loop = self._running_loop()
        if loop is None:
            self.flush()
        elif self._due is not loop:  # none due yet, or due on a loop that has ended since
            self._due = loop
            loop.call_later(FLUSH_EVERY, self.flush)

    @staticmethod
    def _running_loop() -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg

    def flush(self) -> None:
        self._due = None
        if self._file.closed:  # at exit, a stream closed before us (pytest's capture of stderr)
            self._lines.clear()
            return
        if self._lines:
            lines, self._lines = self._lines, []
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()


class _WriterHandler(logging.Handler):
    """Library lines go through the same writer, so they stay in order with ours."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.msg(self.format(record))
        except Exception:
            self.handleError(record)


def _keep(
    _logger: object, _name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return event_dict


def configure(fmt: str = "json", level: str = "info") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    writer = LineWriter(sys.stderr)
    atexit.register(writer.flush)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _tracebacks if fmt == "json" else structlog.dev.set_exc_info,
            # "event" is a queue event here; the log line's own text goes under "msg".
            structlog.processors.EventRenamer("msg") if fmt == "json" else _keep,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_args: writer,
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library: render their lines the same way.
    handler = _WriterHandler(writer)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _tracebacks if fmt == "json" else structlog.dev.set_exc_info,
                structlog.processors.EventRenamer("msg") if fmt == "json" else _keep,
                renderer,
            ],
        )
    )
    handler.addFilter(_outages_are_warnings)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))


def _outages_are_warnings(record: logging.LogRecord) -> bool:
    """aio-pika and aiormq log a lost connection as an error; to us it is an expected outage
    (the robust connection reconnects, and we log our own warning), so it must not page."""
    if record.name.startswith(("aio_pika", "aiormq")) and record.levelno >= logging.WARNING:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        if record.exc_info and record.exc_info[1] is not None:
            # One line, no traceback: a warning, not a crash report.
            record.msg, record.args = f"{record.getMessage()}: {record.exc_info[1]!r}", None
            record.exc_info, record.exc_text = None, None
    return True
