"""The wire format of a delivery (worker/codec.py): what goes in a header stays bounded."""

from __future__ import annotations

from typing import Any

import pytest

from worker import codec
from worker.codec import Delivery, Inbound

HUGE = 200_000  # far beyond a 128 KiB frame
FRAME = 128 * 1024


def _delivery(**changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "hook_id": 5, "event_id": "2f1b6a52-5d0e-4c0e-9f4a-6f3c1b0d9e11", "event": "joined",
        "queue_id": 12, "body": b"{}", "attempts": 2, "tier": 1, "deferred": 3,
        "occurred_at": 1_700_000_000.25,
    }  # fmt: skip
    values.update(changes)
    return Delivery(**values)


def test_a_delivery_reads_back_what_it_wrote_occurred_at_included() -> None:
    d = _delivery()
    assert Delivery.read(Inbound(d.body, d.headers(), None, None, False)) == d


def test_replay_keeps_what_the_retry_consumer_reads_and_starts_the_tiers_again() -> None:
    headers = codec.dead_delivery(_delivery(), "exhausted", "HTTP 500 from x")
    kept = codec.replay(headers)
    assert codec.H_REASON not in kept and codec.H_ERROR not in kept
    back = Delivery.read(Inbound(b"{}", kept, None, None, False))
    assert (back.tier, back.attempts, back.occurred_at) == (0, 2, 1_700_000_000.25)


def test_a_huge_event_id_stays_out_of_the_headers_and_is_named_in_the_error() -> None:
    headers, error = codec.dead_event("queue_id: is required", "x" * HUGE, "queue.1.joined")
    assert codec.H_EVENT_ID not in headers
    assert f"its id ({HUGE} characters, not a UUID)" in error
    assert headers[codec.H_ERROR] == error
    assert codec.header_size(headers) < codec.HEADER_BUDGET


def test_a_uuid_event_id_is_kept() -> None:
    event_id = "2f1b6a52-5d0e-4c0e-9f4a-6f3c1b0d9e11"
    headers, _error = codec.dead_event("boom", event_id, "")
    assert headers[codec.H_EVENT_ID] == event_id and codec.H_ROUTING_KEY not in headers


def test_every_header_of_a_dead_letter_is_bounded() -> None:
    huge = "y" * HUGE
    for headers in (
        codec.dead_event(huge, huge, huge)[0],
        codec.dead_delivery(_delivery(), "rejected", huge),
        codec.wait_headers(_delivery(), huge),
        codec.set_aside({"x-theirs": huge, codec.H_EVENT_ID: huge, "x-small": "ok"}, huge),
        codec.set_aside({f"x-{i}": "z" * 4000 for i in range(100)}, "boom"),
    ):
        assert codec.header_size(headers) < codec.HEADER_BUDGET < FRAME // 2, headers.keys()


def test_a_message_set_aside_keeps_its_small_headers() -> None:
    headers = codec.set_aside({"x-small": "ok", codec.H_HOOK_ID: 7, "x-huge": "z" * HUGE}, "e")
    assert headers["x-small"] == "ok" and headers[codec.H_HOOK_ID] == 7
    assert "x-huge" not in headers and headers[codec.H_REASON] == "invalid"


def test_a_batch_unpacks_to_what_was_packed_in_either_format() -> None:
    items = [(_delivery(hook_id=i).headers(), b'{"n":%d}' % i) for i in range(3)]
    body, headers, content_type = codec.pack(items)
    assert (headers, content_type) == ({codec.H_BATCH: 2}, codec.BATCH2_TYPE)
    assert codec.unpack(headers, body) == items
    old_body, old_headers, old_type = codec.pack(items, fmt=1)  # what older versions wrote
    assert old_type == codec.BATCH_TYPE and codec.H_JOBS in old_headers
    assert codec.unpack(old_headers, old_body) == items


def test_a_format_2_batch_carries_any_bytes_and_refuses_what_does_not_add_up() -> None:
    items = [({codec.H_HOOK_ID: 1}, b'{\n"a": 1}\n'), ({codec.H_HOOK_ID: 2}, b"")]
    body, headers, _type = codec.pack(items)
    assert codec.unpack(headers, body) == items
    for bad in (body[:-1], body + b"x", b"not json\n" + body, body.split(b"\n", 1)[0]):
        with pytest.raises(ValueError):
            codec.unpack(headers, bad)
    with pytest.raises(ValueError, match="format 3"):
        codec.unpack({codec.H_BATCH: 3}, body)
