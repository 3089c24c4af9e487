"""Pure pieces of the log set-up."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from worker.logs import _UtcStamp


def test_the_timestamp_is_utc_iso_with_microseconds_and_keeps_time() -> None:
    stamp = _UtcStamp()
    before = time.time()
    first = stamp(None, "info", {})["timestamp"]
    second = stamp(None, "info", {})["timestamp"]
    after = time.time()
    for text in (first, second):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text), text
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        assert before - 1e-6 <= moment <= after + 1e-6
    assert first <= second
    assert datetime.fromisoformat(first.replace("Z", "+00:00")).tzinfo == UTC
