"""The wire format of a delivery, read and written here only (arq's job serialisation in one
module): the headers of a wait message, a batch of them, what `dlq replay` keeps, and what a
dead letter carries (contract §6). Pure: no AMQP client, no I/O; worker/broker moves the bytes.

Every value that goes into a header is bounded (issue 12, defect 8): the broker takes a
message's headers in one frame (128 KiB by default), and a frame too large closes the whole
connection, with every message in flight on it redelivered, again and again. An event id that
is not a UUID and too long is left out of `queue-hooks-event-id` (the error line says so), an
error line is cut, and a message's headers stay under HEADER_BUDGET in all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

Headers = dict[str, Any]

# Headers of the messages we publish ourselves.
H_REASON = "queue-hooks-reason"
H_ERROR = "queue-hooks-error"
H_ATTEMPTS = "queue-hooks-attempts"
H_EVENT_ID = "queue-hooks-event-id"
H_HOOK_ID = "queue-hooks-hook-id"
H_QUEUE_ID = "queue-hooks-queue-id"
H_EVENT = "queue-hooks-event"
H_TIER = "queue-hooks-tier"  # how many wait tiers this delivery has been through
H_ROUTING_KEY = "queue-hooks-routing-key"  # an invalid event's own key, for `dlq replay`
# Times a delivery was put off, without a request, because its schema had too many in flight.
H_DEFERRED = "queue-hooks-deferred"
# The event's occurred_at (unix seconds), for the lag metric: a retry reads it here rather
# than parsing its whole body again.
H_OCCURRED_AT = "queue-hooks-occurred-at"
# A wait message carrying several deliveries as the versions before wrote it (format 1, still
# read): the headers of each in this AMQP table, in the order of the body's lines.
H_JOBS = "queue-hooks-jobs"
# A wait message carrying several deliveries in format 2: this header's value is 2, and the
# headers of each travel in the body (see `pack`), not in an AMQP table.
H_BATCH = "queue-hooks-batch"
# The broker's own count of earlier deliveries of a message (quorum queues): poison counting.
H_DELIVERY_COUNT = "x-delivery-count"

OURS = frozenset(
    {H_REASON, H_ERROR, H_ATTEMPTS, H_EVENT_ID, H_HOOK_ID, H_QUEUE_ID, H_EVENT, H_TIER,
     H_ROUTING_KEY, H_DEFERRED, H_OCCURRED_AT}
)  # fmt: skip
# A failed delivery sent back by `dlq replay` keeps what the retry consumer reads; the reason
# and error of its death are dropped, and its tier starts again at 0.
KEPT_FOR_REPLAY = (H_HOOK_ID, H_EVENT_ID, H_EVENT, H_QUEUE_ID, H_ATTEMPTS, H_OCCURRED_AT)

MAX_ID_CHARS = 128  # a UUID is 36; a longer id is not one, and stays out of the headers
MAX_ERROR_CHARS = 1000
MAX_TEXT_CHARS = 1000  # any other text header of ours (a routing key is at most 255 bytes)
MAX_FOREIGN_VALUE = 4096  # a header of someone else's kept on a message we set aside
HEADER_BUDGET = 32 << 10  # a message's headers in all, well below one 128 KiB frame

BATCH_TYPE = "application/x-ndjson"  # format 1
BATCH2_TYPE = "application/vnd.queue-hooks.batch"  # format 2
JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Inbound:
    """One delivery as a consumer hands it to a handler: no AMQP object in it."""

    body: bytes
    headers: Headers
    content_type: str | None
    timestamp: datetime | None
    redelivered: bool
    routing_key: str = ""

    @property
    def deliveries(self) -> int:
        """This delivery's number: quorum queues count earlier ones in x-delivery-count."""
        try:
            return int(self.headers.get(H_DELIVERY_COUNT, 0) or 0) + 1
        except (TypeError, ValueError):
            return 1


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery: an event's body for one hook, and how far its series has come."""

    hook_id: int
    event_id: str
    event: str
    queue_id: int
    body: bytes
    attempts: int = 0  # HTTP requests made so far
    tier: int = 0  # wait tiers gone through so far
    deferred: int = 0  # times put off because its schema was at its limit (no request made)
    occurred_at: float | None = None  # unix seconds, for the lag metric

    @property
    def webhook_id(self) -> str:
        return f"{self.event_id}:{self.hook_id}"

    def moved(
        self, *, attempts: int | None = None, tier: int | None = None, deferred: int | None = None
    ) -> Delivery:
        """With its counts moved on (those given). Built directly: `dataclasses.replace`
        cost a put-off delivery 3 % of its CPU (docs/receivers.md)."""
        return Delivery(
            self.hook_id, self.event_id, self.event, self.queue_id, self.body,
            self.attempts if attempts is None else attempts,
            self.tier if tier is None else tier,
            self.deferred if deferred is None else deferred,
            self.occurred_at,
        )  # fmt: skip

    def headers(self) -> Headers:
        headers: Headers = {
            H_HOOK_ID: self.hook_id,
            H_EVENT_ID: self.event_id,
            H_EVENT: self.event,
            H_QUEUE_ID: self.queue_id,
            H_ATTEMPTS: self.attempts,
            H_TIER: self.tier,
        }
        if self.deferred:
            headers[H_DEFERRED] = self.deferred
        if self.occurred_at is not None:
            headers[H_OCCURRED_AT] = self.occurred_at
        return headers

    @classmethod
    def read(cls, inbound: Inbound) -> Delivery:
        """Raises KeyError, ValueError or TypeError for a message that is not one of ours."""
        h = inbound.headers
        occurred = h.get(H_OCCURRED_AT)
        return cls(
            hook_id=int(h[H_HOOK_ID]),
            event_id=_text(h.get(H_EVENT_ID, "")),
            event=_text(h.get(H_EVENT, "")),
            queue_id=int(h.get(H_QUEUE_ID, 0)),
            body=inbound.body,
            attempts=int(h.get(H_ATTEMPTS, 0)),
            tier=int(h.get(H_TIER, 0)),
            deferred=int(h.get(H_DEFERRED, 0)),
            occurred_at=None if occurred is None else float(occurred),
        )


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown_id(event_id: str | None) -> str | None:
    """An event id as a log line may show it."""
    return None if event_id is None else cut(event_id, MAX_ID_CHARS)


# -- what waits --------------------------------------------------------------------------
def wait_headers(nxt: Delivery, error: str) -> Headers:
    headers = nxt.headers()
    headers[H_ERROR] = cut(error, MAX_ERROR_CHARS)
    return headers


def pack(items: list[tuple[Headers, bytes]], fmt: int = 2) -> tuple[bytes, Headers, str]:
    """(body, headers, content type) of one wait message carrying every item.

    A lone item is itself: its headers in the AMQP table, its body as it is. Several, in
    format 2: one line of JSON, `{"jobs": [headers of each], "sizes": [bytes of each body]}`,
    then the bodies back to back; the message's one header `queue-hooks-batch: 2`. The
    headers go in the body because encoding them as an AMQP table (and decoding it on the way
    back) was the dearest part of putting a delivery off (docs/receivers.md), and the body
    has no frame to fit in. Format 1 (`fmt=1`, the versions before, for a rolling upgrade):
    the bodies one per line (a body we built is compact JSON: never a raw newline), the
    headers of each in the `queue-hooks-jobs` table."""
    if len(items) == 1:
        headers, body = items[0]
        return body, headers, JSON_TYPE
    if fmt == 1:
        return b"\n".join(b for _h, b in items), {H_JOBS: [h for h, _b in items]}, BATCH_TYPE
    head = orjson.dumps({"jobs": [h for h, _b in items], "sizes": [len(b) for _h, b in items]})
    return b"".join([head, b"\n", *(b for _h, b in items)]), {H_BATCH: 2}, BATCH2_TYPE


def unpack(headers: Mapping[str, Any], body: bytes) -> list[tuple[Headers, bytes]] | None:
    """The (headers, body) of each delivery a batch carries, in either format; None when it
    is not a batch. Raises ValueError when it does not hold together."""
    if headers.get(H_BATCH) is not None:
        return _unpack_2(headers[H_BATCH], body)
    tables = headers.get(H_JOBS)
    if tables is None:
        return None
    bodies = body.split(b"\n")
    if not isinstance(tables, list) or len(tables) != len(bodies):
        raise ValueError(f"a batch whose {H_JOBS} header does not match its lines")
    return [(dict(h), b) for h, b in zip(tables, bodies, strict=True)]


def _unpack_2(version: object, body: bytes) -> list[tuple[Headers, bytes]]:
    if version != 2:
        raise ValueError(f"a batch of format {version!r}, which this version cannot read")
    end = body.find(b"\n")
    try:
        head = orjson.loads(body[:end] if end >= 0 else body)
        jobs, sizes = head["jobs"], head["sizes"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        raise ValueError("a batch whose first line is not its table of contents") from None
    if (
        not isinstance(jobs, list) or not isinstance(sizes, list) or len(jobs) != len(sizes)
        or not all(isinstance(h, dict) for h in jobs)
        or not all(isinstance(n, int) and n >= 0 for n in sizes)
        or end < 0 or end + 1 + sum(sizes) != len(body)
    ):  # fmt: skip
        raise ValueError("a batch whose table of contents does not match its bodies")
    items, at = [], end + 1
    for h, n in zip(jobs, sizes, strict=True):
        items.append((h, body[at : at + n]))
        at += n
    return items


def inbounds(
    body: bytes, headers: Headers, content_type: str | None, timestamp: datetime | None,
    redelivered: bool, routing_key: str, batches: bool,
) -> list[Inbound]:  # fmt: skip
    """The deliveries a message carries: itself, or each of a wait batch. ValueError: a batch
    that does not hold together."""
    items = unpack(headers, body) if batches else None
    if items is None:
        return [Inbound(body, headers, content_type, timestamp, redelivered, routing_key)]
    count = {k: headers[k] for k in (H_DELIVERY_COUNT,) if k in headers}
    return [
        Inbound(b, item | count, JSON_TYPE, timestamp, redelivered, routing_key)
        for item, b in items
    ]


def header_size(headers: Mapping[str, Any]) -> int:
    """An estimate from above of a table's encoded size: names, values as text, lengths."""
    return sum(len(k) + _size(v) + 8 for k, v in headers.items())


def _size(value: object) -> int:
    if isinstance(value, str | bytes):
        return len(value) * (4 if isinstance(value, str) and not value.isascii() else 1)
    if isinstance(value, int | float | bool) or value is None:
        return 9
    if isinstance(value, Mapping):
        return header_size(value) + 5
    if isinstance(value, list | tuple):
        return sum(_size(v) + 1 for v in value) + 5
    return len(orjson.dumps(value, default=str))


# -- what dies -----------------------------------------------------------------------------
def dead_delivery(delivery: Delivery, reason: str, error: str) -> Headers:
    """A failed delivery: its own headers, with why it died."""
    headers = delivery.headers()
    headers[H_REASON] = reason
    headers[H_ERROR] = cut(error, MAX_ERROR_CHARS)
    return headers


def dead_event(error: str, event_id: str | None, routing_key: str) -> tuple[Headers, str]:
    """An invalid event: (headers, the error line as written). An id that is not a UUID and
    too long for a header is left out of it, and the error line says so."""
    if event_id is not None and len(event_id) > MAX_ID_CHARS:
        error = (
            f"{error}; its id ({len(event_id)} characters, not a UUID) is left out of {H_EVENT_ID}"
        )
        event_id = None
    error = cut(error, MAX_ERROR_CHARS)
    headers: Headers = {H_REASON: "invalid", H_ERROR: error, H_ATTEMPTS: 0}
    if event_id is not None:
        headers[H_EVENT_ID] = event_id
    if routing_key:
        headers[H_ROUTING_KEY] = cut(routing_key, MAX_TEXT_CHARS)
    return headers, error


def set_aside(headers: Mapping[str, Any], error: str) -> Headers:
    """A message we cannot handle (not one of ours, or one that keeps failing the worker): its
    headers kept as far as they fit (ours first, no batch table), dead-lettered `invalid`."""
    out: Headers = {H_ATTEMPTS: 0}
    foreign: list[tuple[str, Any]] = []
    for name, value in headers.items():
        if name == H_JOBS:
            continue
        if name in OURS and _size(value) <= MAX_TEXT_CHARS:
            out[name] = value
        elif name not in OURS and _size(value) <= MAX_FOREIGN_VALUE:
            foreign.append((name, value))
    out[H_REASON] = "invalid"
    out[H_ERROR] = cut(error, MAX_ERROR_CHARS)
    room = HEADER_BUDGET - header_size(out)
    for name, value in foreign:
        size = len(name) + _size(value) + 8
        if size <= room:
            out[name] = value
            room -= size
    return out


def replay(headers: Mapping[str, Any]) -> Headers:
    """A dead delivery sent back for a fresh series of attempts: tier 0 again.
    `queue-hooks-attempts` is kept, so the receiver's `queue-hooks-attempt` goes on counting
    the requests of this delivery."""
    kept = {name: headers[name] for name in KEPT_FOR_REPLAY if name in headers}
    kept[H_TIER] = 0
    return kept
