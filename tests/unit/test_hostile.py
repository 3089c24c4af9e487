"""Pure property tests of hostile event bodies (issue 6): whatever the bytes, parse_event raises
nothing but InvalidEvent, and a body it accepts builds a payload that serialises and says only
what the contract says, bounded in size."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import RESERVED, Event, InvalidEvent, parse_event
from schemas.payload import build_data
from tests.support.hostile import (
    HOSTILE_BODIES,
    HOSTILE_MAX_BYTES,
    JSON_VALUES,
    check_payload,
    event_like,
    outcome,
)

EID = "6f1c1c9e-3b1a-4c1e-9a1a-1a2b3c4d5e6f"
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(HOSTILE_BODIES)
def test_any_body_is_an_event_or_invalid_and_an_event_always_serialises(body: bytes) -> None:
    result = outcome(body)
    if isinstance(result, InvalidEvent):
        return
    check_payload(body, result)


@PROPERTY
@given(event_like())
def test_an_engine_like_event_is_an_event_or_invalid(raw: dict[str, object]) -> None:
    body = json.dumps(raw).encode()
    result = outcome(body)
    if not isinstance(result, InvalidEvent):
        check_payload(body, result)


@PROPERTY
@given(HOSTILE_BODIES)
def test_an_oversized_body_is_invalid_whatever_it_holds(body: bytes) -> None:
    padded = body + b" " * (HOSTILE_MAX_BYTES + 1 - len(body))  # JSON allows the whitespace
    result = outcome(padded if len(body) <= HOSTILE_MAX_BYTES else body)
    assert isinstance(result, InvalidEvent)
    assert "over the limit" in result.error


def test_an_oversized_event_still_names_its_id() -> None:
    body = orjson.dumps({"id": EID, "event": "joined", "pad": "x" * (2 << 20)})
    result = outcome(body, 1 << 20)
    assert isinstance(result, InvalidEvent)
    assert result.event_id == EID


@PROPERTY
@given(st.dictionaries(st.sampled_from(sorted(RESERVED)) | st.text(max_size=16), JSON_VALUES))
def test_variables_never_pose_as_fields_and_only_strings_come_out(
    variables: dict[str, object],
) -> None:
    body = json.dumps(
        {"id": EID, "event": "joined", "queue_id": 1, "channel": "chat", "attempt_id": "7",
         "variables": variables}
    ).encode()  # fmt: skip
    event = parse_event(body, 1 << 20)
    data = build_data(event, {})
    seen = json.loads(body, parse_float=str, parse_int=str)["variables"]  # numbers as written
    assert data["channel"] == "chat" and data["attempt_id"] == 7  # the fields win
    for key, value in data.items():
        if key not in ("channel", "attempt_id"):
            assert key not in RESERVED
            assert isinstance(value, str)
            original = seen[key]
            # Strings stay, numbers and booleans are their JSON text; null and nested go.
            assert value == (
                original if isinstance(original, str) else orjson.dumps(original).decode()
            )
    dropped = {k for k, v in seen.items() if v is None or isinstance(v, list | dict)}
    assert not dropped & data.keys() - {"channel", "attempt_id"}


def test_very_many_variables_stay_within_the_event_limit() -> None:
    variables = {f"v{i}": i for i in range(50_000)}
    body = orjson.dumps(
        {"id": EID, "event": "joined", "queue_id": 1, "channel": "call", "variables": variables}
    )
    assert isinstance(outcome(body, 1 << 20), Event)
    assert isinstance(outcome(body, len(body) - 1), InvalidEvent)  # the limit bounds them all
    check_payload(body, parse_event(body, 1 << 20))


def test_a_number_too_big_for_64_bits_is_invalid_not_a_crash() -> None:
    for value in ("123456789012345678901234567890", 10**30, "9223372036854775808"):
        body = orjson.dumps({"id": EID, "event": "joined", "queue_id": 1, "channel": "call",
                             "attempt_id": value}) if not isinstance(value, int) else (
            b'{"id":"%s","event":"joined","queue_id":1,"channel":"call","attempt_id":%d}'
            % (EID.encode(), value))  # fmt: skip
        result = outcome(body)
        assert isinstance(result, InvalidEvent), value
        assert result.error.startswith("attempt_id: "), result.error


def test_a_timestamp_that_leaves_the_calendar_in_utc_is_invalid() -> None:
    body = orjson.dumps({"id": EID, "event": "joined", "queue_id": 1, "channel": "call",
                         "occurred_at": "0001-01-01T00:00:00+01:00"})  # fmt: skip
    result = outcome(body)
    assert isinstance(result, InvalidEvent)
    assert result.error.startswith("occurred_at: ")


def test_duplicate_keys_the_last_one_wins() -> None:
    body = (
        b'{"id":"%s","event":"hangup","queue_id":1,"channel":"call","event":"joined"}'
        % EID.encode()
    )
    result = outcome(body)
    assert isinstance(result, Event) and result.event == "joined"
