"""Pure pieces of the log set-up."""

from __future__ import annotations

import asyncio
import io

from worker.logs import FLUSH_EVERY, LineWriter


def test_lines_are_written_together_in_order_and_none_is_left_behind() -> None:
    out = io.StringIO()
    writer = LineWriter(out)
    writer.msg("outside a loop: at once")
    assert out.getvalue() == "outside a loop: at once\n"

    async def burst() -> str:
        writer.msg("a")
        writer.msg("b")
        written_at_once = out.getvalue()
        await asyncio.sleep(FLUSH_EVERY * 4)
        return written_at_once

    assert asyncio.run(burst()) == "outside a loop: at once\n"  # gathered, not written yet
    assert out.getvalue().splitlines()[1:] == ["a", "b"]

    async def ends_before_its_flush() -> None:
        writer.msg("c")  # its flush is due on this loop, which ends first

    asyncio.run(ends_before_its_flush())

    async def next_loop() -> None:
        writer.msg("d")
        await asyncio.sleep(FLUSH_EVERY * 4)

    asyncio.run(next_loop())
    assert out.getvalue().splitlines()[1:] == ["a", "b", "c", "d"]


def test_a_flush_at_exit_into_a_stream_closed_before_it_does_not_raise() -> None:
    """pytest closes its capture of stderr before the atexit flush runs: that flush raised
    `ValueError: I/O operation on closed file` into every run's output."""
    stream = io.StringIO()
    writer = LineWriter(stream)
    writer.msg("the last line")  # no loop running: written at once
    writer._lines.append("one more, still buffered")
    stream.close()
    writer.flush()
    assert writer._lines == []
