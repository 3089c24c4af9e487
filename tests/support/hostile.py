"""Hypothesis strategies for hostile event bodies (issue 6), and the contract's checks of what
comes out of one: shared by the pure property tests and the test through the real broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schemas.events import CALL_FIELDS, FIELDS_OF, RESERVED, Event, InvalidEvent, parse_event
from schemas.payload import build_body, encode_data
from schemas.queue_types import EVENTS

_TYPES: dict[str, tuple[type, ...]] = {
    "attempt_id": (int,), "use_processing": (bool,), "agent_id": (int,), "user_id": (int,),
    "member_id": (int,), "cc_attempt_seq": (int,), "call_sip_code": (int,),
    "call_bill_sec": (int, float), "call_duration": (int, float), "call_voice_sec": (int, float),
}  # fmt: skip
HOSTILE_MAX_BYTES = 64 * 1024  # small, so oversized bodies stay cheap to make
QUEUE_VARIABLES = {"region": "eu", "agent_id": "queue-poses-as-a-field", "n": "1"}

# What the queue engine sends for a field, and what a hostile sender might send instead.
_STRINGY = st.sampled_from(
    ["42", "-7", "12.5", "1e5", "true", "false", "TRUE", "1", "0", " 42 ", "0x1F", "NaN",
     "Infinity", "-1e400", "1e400", "", "null", "9223372036854775807", "9223372036854775808",
     "-9223372036854775809", "123456789012345678901234567890", "18446744073709551616", "4.2e1",
     "call", "chat", "task", "CALL", "HUMAN", "success", "\u0000", "\ud7ff", "💥" * 50]
)  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: JSON allows numbers no 64-bit integer holds
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | _STRINGY
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_TIMESTAMPS = st.sampled_from(
    ["2026-11-24T10:00:00Z", "2026-11-24T10:00:00.123456+03:00", "2026-11-24 10:00:00z",
     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-02-30T10:00:00Z",
     "2026-11-24T10:00:00.1234567890123Z", "2026-11-24T25:00:00Z", "2026-11-24", "yesterday",
     "2026-11-24T10:00:00+24:00", "2026-11-24T10:00:00-00:00"]
)  # fmt: skip
# Names a variable might borrow: every documented field, and every key of the delivered body.
_POSING = RESERVED | {
    "id",
    "event",
    "queue_id",
    "type",
    "hook_id",
    "schema_id",
    "data",
    "timestamp",
}
_KEYS = st.sampled_from(sorted(_POSING)) | st.text(max_size=12)


def _plausible(field: str) -> st.SearchStrategy[Any]:
    kinds = _TYPES.get(field, (str,))
    if bool in kinds:
        return st.sampled_from(["true", "false", True, False, "1", "0"])
    if float in kinds:
        numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
        return numbers | numbers.map(str)
    if int in kinds:
        return st.integers() | st.integers().map(str)
    return st.text(max_size=30)


@st.composite
def event_like(draw: st.DrawFn) -> dict[str, Any]:
    """An event as the engine sends it, then roughed up: fields of the wrong type, nulls,
    unknown keys, reserved names in the variables, odd timestamps."""
    name = draw(st.sampled_from([*EVENTS, *EVENTS, "hangup", "", "JOINED"]))
    body: dict[str, Any] = {
        "id": str(draw(st.uuids())),
        "event": name,
        "queue_id": draw(st.sampled_from(["1", 1, 1, "2", 1.0, "1.5", -1, "x", None])),
        "channel": draw(st.sampled_from(["call", "call", "chat", "task", "fax", None])),
    }
    if draw(st.booleans()):
        body["occurred_at"] = draw(_TIMESTAMPS)
    for field in FIELDS_OF.get(name, FIELDS_OF["leaving"]):
        if field != "channel" and draw(st.integers(0, 3)):
            # Mostly plausible values (so that many events are valid, edge values and all),
            # sometimes anything at all.
            hostile = draw(st.integers(0, 4)) == 0
            body[field] = draw(_STRINGY | JSON_VALUES if hostile else _plausible(field))
    if draw(st.booleans()):
        body["variables"] = draw(st.dictionaries(_KEYS, JSON_VALUES, max_size=12) | JSON_VALUES)
    body.update(draw(st.dictionaries(_KEYS, JSON_VALUES, max_size=3)))
    return body


def _encode(value: Any, ascii_only: bool) -> bytes:
    # The standard library writes what orjson never would: huge integers, NaN, Infinity.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def _duplicate_keys(draw: st.DrawFn) -> bytes:
    body = draw(event_like())
    key = draw(st.sampled_from(sorted(body)))
    extra = _encode({key: draw(JSON_VALUES)}, True)
    return _encode(body, True)[:-1] + b", " + extra[1:]  # the same key twice; the last wins


@st.composite
def _not_utf8(draw: st.DrawFn) -> bytes:
    raw = _encode(draw(event_like()), False)
    at = draw(st.integers(0, len(raw)))
    junk = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf8\x88"]))
    return raw[:at] + junk + raw[at:]


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([10, 500, 1100, 100_000]))
    nested = b"[" * depth + b"]" * depth
    body = _encode(draw(event_like()), True)
    where = draw(st.sampled_from([b'"variables"', b'"extra"', None]))
    return nested if where is None else body[:-1] + b", " + where + b": " + nested + b"}"


@st.composite
def _huge(draw: st.DrawFn) -> bytes:
    body = draw(event_like())
    size = draw(st.sampled_from([1000, HOSTILE_MAX_BYTES // 2, HOSTILE_MAX_BYTES * 2]))
    key = draw(st.sampled_from(["destination", "agent_name", "extra", "variables"]))
    body[key] = {"k" * 8: "v" * size} if key == "variables" else "x" * size
    if draw(st.booleans()):
        body["variables"] = {f"v{i}": str(i) for i in range(size // 16)}  # very many keys
    return _encode(body, True)


HOSTILE_BODIES = st.one_of(
    event_like().map(lambda b: _encode(b, True)),
    event_like().map(lambda b: _encode(b, False)),
    JSON_VALUES.map(lambda v: _encode(v, True)),
    st.binary(max_size=200),
    _duplicate_keys(),
    _not_utf8(),
    _deep(),
    _huge(),
)


def sample(strategy: st.SearchStrategy[bytes], count: int) -> list[bytes]:
    """`count` examples of a strategy, the same on every run (for tests that cannot @given)."""
    out: list[bytes] = []

    @settings(
        max_examples=count, database=None, derandomize=True, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), deadline=None,
    )  # fmt: skip
    @given(strategy)
    def collect(body: bytes) -> None:
        out.append(body)

    collect()
    return out


# -- what the contract says comes out -----------------------------------------------------
RECEIVED_AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def outcome(body: bytes, max_bytes: int = HOSTILE_MAX_BYTES) -> Event | InvalidEvent:
    """parse_event never raises anything but InvalidEvent, and its error is one bounded line."""
    try:
        return parse_event(body, max_bytes)
    except InvalidEvent as exc:
        assert exc.error and "\n" not in exc.error and len(exc.error) <= 8192, exc.error
        assert exc.event_id is None or isinstance(exc.event_id, str)
        return exc


def check_payload(body: bytes, event: Event, hook_id: int = 5, schema_id: int = 3) -> bytes:
    """A valid event builds a body that serialises and says what contract §3 and §5 say."""
    out = build_body(event, RECEIVED_AT, hook_id, schema_id, encode_data(event, QUEUE_VARIABLES))
    check_delivered(body, out, hook_id, schema_id)
    return out


def check_delivered(sent: bytes, delivered: bytes, hook_id: int, schema_id: int) -> None:
    raw = orjson.loads(sent)
    doc = orjson.loads(delivered)
    assert set(doc) == {"type", "id", "timestamp", "queue_id", "hook_id", "schema_id", "data"}
    assert doc["id"] == raw["id"]  # exactly as sent
    assert doc["type"] == raw["event"]
    assert (doc["hook_id"], doc["schema_id"]) == (hook_id, schema_id)
    assert isinstance(doc["queue_id"], int) and -(2**63) <= doc["queue_id"] < 2**63
    datetime.fromisoformat(doc["timestamp"])
    data = doc["data"]
    own = set(FIELDS_OF[raw["event"]])
    for key, value in data.items():
        if key in RESERVED:  # a documented field: only the event's own, of the documented type
            assert key in own, key
            assert key in raw and raw[key] is not None, key
            assert not (raw["channel"] != "call" and key in CALL_FIELDS), key
            kinds = _TYPES.get(key, (str,))
            assert isinstance(value, kinds) and not (bool in kinds) ^ isinstance(value, bool)
        else:  # a variable: always a string, never posing as a field
            assert isinstance(value, str), (key, value)
    # Bounded: nothing grows beyond what came in, plus the queue's own variables.
    assert len(delivered) <= 2 * len(sent) + len(orjson.dumps(QUEUE_VARIABLES)) + 512
