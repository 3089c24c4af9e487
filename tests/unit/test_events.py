"""Pure: validation and coercion of the eight events (contract §1, §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.events import FIELDS_OF, InvalidEvent, parse_event, variables_from_text
from schemas.payload import build_body, build_data
from schemas.queue_types import EVENTS

EID = "6f1c1c9e-3b1a-4c1e-9a1a-1a2b3c4d5e6f"
LIMIT = 1 << 20

C = ["channel", "attempt_id", "destination", "use_processing", "agent_channel_id",
     "member_channel_id"]  # fmt: skip
A = ["agent_name", "agent_id", "user_id", "agent_extension", "member_name", "member_id",
     "cc_attempt_seq"]  # fmt: skip
MEDIA = ["call_bill_sec", "call_duration", "amd_result", "call_voice_sec"]
EXPECTED = {
    "joined": C,
    "answered": C + A + MEDIA,
    "offering": C + A + MEDIA,
    "bridged": C + A + MEDIA,
    "missed": C + A + ["call_bill_sec", "call_duration", "amd_result"],
    "leaving": C
    + A
    + [
        "cc_result",
        "call_bill_sec",
        "call_duration",
        "call_cause",
        "call_sip_code",
        "amd_result",
        "call_voice_sec",
    ],
    "processing": C
    + A
    + [
        "call_bill_sec",
        "call_duration",
        "call_cause",
        "call_sip_code",
        "amd_result",
        "call_voice_sec",
    ],
    "active": C + A + MEDIA,
}
# Every documented field, as the engine sends it (strings), and its documented value.
AS_SENT: dict[str, tuple[Any, Any]] = {
    "channel": ("call", "call"), "attempt_id": ("42", 42), "destination": ("+1555", "+1555"),
    "use_processing": ("true", True), "agent_channel_id": ("ac-1", "ac-1"),
    "member_channel_id": ("mc-1", "mc-1"), "agent_name": ("Ann", "Ann"), "agent_id": ("7", 7),
    "user_id": ("70", 70), "agent_extension": ("1007", "1007"), "member_name": ("Bob", "Bob"),
    "member_id": ("4242", 4242), "cc_attempt_seq": ("3", 3), "call_bill_sec": ("12.5", 12.5),
    "call_duration": ("60", 60), "amd_result": ("HUMAN", "HUMAN"),
    "call_voice_sec": ("11", 11), "call_cause": ("NORMAL_CLEARING", "NORMAL_CLEARING"),
    "call_sip_code": ("200", 200), "cc_result": ("success", "success"),
}  # fmt: skip


def body(**fields: Any) -> bytes:
    raw: dict[str, Any] = {"id": EID, "event": "leaving", "queue_id": "12", "channel": "call"}
    raw.update(fields)
    return orjson.dumps(raw)


def invalid(raw: bytes) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw, LIMIT)
    return caught.value


def test_the_field_table_is_the_contracts() -> None:
    assert {e: sorted(f) for e, f in FIELDS_OF.items()} == {
        e: sorted(f) for e, f in EXPECTED.items()
    }


@pytest.mark.parametrize("name", EVENTS)
def test_every_field_is_coerced_from_strings(name: str) -> None:
    sent = {k: v[0] for k, v in AS_SENT.items()}
    event = parse_event(body(event=name, **sent), LIMIT)
    data = build_data(event, {})
    assert data == {k: AS_SENT[k][1] for k in EXPECTED[name]}
    for key, value in data.items():
        assert type(value) is type(AS_SENT[key][1]), key


def test_numbers_keep_their_fraction_and_integers_stay_integers() -> None:
    event = parse_event(body(call_bill_sec="12.5", call_duration=7, call_voice_sec="3"), LIMIT)
    data = build_data(event, {})
    assert data["call_bill_sec"] == 12.5
    assert data["call_duration"] == 7 and isinstance(data["call_duration"], int)
    assert data["call_voice_sec"] == 3


@pytest.mark.parametrize("channel", ["chat", "task"])
def test_call_fields_are_left_out_when_the_channel_is_not_a_call(channel: str) -> None:
    sent = {k: v[0] for k, v in AS_SENT.items()} | {"channel": channel}
    data = build_data(parse_event(body(event="leaving", **sent), LIMIT), {})
    for name in ("call_bill_sec", "call_duration", "amd_result", "call_voice_sec",
                 "call_cause", "call_sip_code"):  # fmt: skip
        assert name not in data
    assert data["cc_result"] == "success" and data["channel"] == channel


CALL = ["call_bill_sec", "call_duration", "amd_result", "call_voice_sec", "call_cause",
        "call_sip_code"]  # fmt: skip


@pytest.mark.parametrize("channel", ["chat", "task"])
@pytest.mark.parametrize("name", CALL)
def test_a_call_field_of_a_chat_is_ignored_whatever_its_value(channel: str, name: str) -> None:
    # Issue 12, defect 1: the field is not delivered (§3), so its value is ignored (§1).
    for bad in ("n/a", {"x": 1}, [1], True, "1e999"):
        data = build_data(parse_event(body(channel=channel, **{name: bad}), LIMIT), {})
        assert data == {"channel": channel}


def test_a_call_field_of_a_call_that_cannot_be_coerced_is_still_invalid() -> None:
    error = invalid(body(call_duration="n/a")).error
    assert error == 'call_duration: "n/a" is not a number'


# Every integer and number field of every event (contract §1, §3).
INTEGERS = ["queue_id", "attempt_id", "agent_id", "user_id", "member_id", "cc_attempt_seq",
            "call_sip_code"]  # fmt: skip
NUMBERS = ["call_bill_sec", "call_duration", "call_voice_sec"]


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("name", INTEGERS)
def test_a_json_boolean_is_never_an_integer(name: str, value: bool) -> None:
    # Issue 12, defect 9: `"queue_id": true` was read as queue 1.
    error = invalid(body(**{name: value})).error
    assert error == f"{name}: {orjson.dumps(value).decode()} is not an integer"


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("name", NUMBERS)
def test_a_json_boolean_is_never_a_number(name: str, value: bool) -> None:
    error = invalid(body(**{name: value})).error
    assert error == f"{name}: {orjson.dumps(value).decode()} is not a number"


def test_the_integer_and_number_lists_are_every_such_field() -> None:
    sent = {k: v[0] for k, v in AS_SENT.items()}
    data = build_data(parse_event(body(**sent), LIMIT), {})
    numeric = {k for k, v in data.items() if type(v) in (int, float)}
    assert numeric | {"queue_id"} == set(INTEGERS) | set(NUMBERS)


def test_fields_not_carried_are_left_out_not_null() -> None:
    data = build_data(parse_event(body(agent_id=None), LIMIT), {})
    assert data == {"channel": "call"}


def test_fields_of_other_events_are_ignored_even_when_bad() -> None:
    data = build_data(parse_event(body(event="joined", agent_id="not a number"), LIMIT), {})
    assert "agent_id" not in data


def test_variables_layer_under_fields_and_cannot_pose_as_one() -> None:
    raw = body(
        agent_id="7",
        variables={"agent_id": "999", "member": "m", "shared": "member", "n": 5, "b": False,
                   "gone": None, "nested": {"a": 1}, "list": [1], "cc_result": "x"},
    )  # fmt: skip
    queue_vars = {"shared": "queue", "only_queue": "q", "channel": "sms"}
    data = build_data(parse_event(raw, LIMIT), queue_vars)
    assert data == {
        "only_queue": "q", "shared": "member", "member": "m", "n": "5", "b": "false",
        "agent_id": 7, "channel": "call",
    }  # fmt: skip


def test_body_is_the_contract_shape_and_keeps_the_id_as_sent() -> None:
    upper = EID.upper()
    event = parse_event(body(id=upper, occurred_at="2026-11-24T13:00:00.5+03:00"), LIMIT)
    data = orjson.dumps(build_data(event, {}))
    out = orjson.loads(build_body(event, datetime.now(UTC), 5, 3, data))
    assert out == {
        "type": "leaving", "id": upper, "timestamp": "2026-11-24T10:00:00.500000Z",
        "queue_id": 12, "hook_id": 5, "schema_id": 3, "data": {"channel": "call"},
    }  # fmt: skip


def test_receipt_time_stands_in_for_a_missing_occurred_at() -> None:
    event = parse_event(body(), LIMIT)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    out = orjson.loads(build_body(event, at, 1, 1, b"{}"))
    assert out["timestamp"] == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (body(attempt_id="abc"), 'attempt_id: "abc" is not an integer'),
        (body(call_bill_sec="lots"), 'call_bill_sec: "lots" is not a number'),
        (body(use_processing="maybe"), 'use_processing: "maybe" is not a boolean'),
        (body(channel="CALL"), 'channel: "CALL" is not one of'),
        (body(channel="sms"), 'channel: "sms" is not one of'),
        (body(event="hangup"), 'event: "hangup" is not one of'),
        (body(occurred_at="yesterday"), 'occurred_at: "yesterday" is not an RFC 3339'),
        (body(occurred_at="2026-11-24T10:00:00"), "is not an RFC 3339"),
        (body(occurred_at=1700000000), "is not an RFC 3339"),
        (body(variables=["a"]), 'variables: ["a"] is not an object'),
        (body(id="12"), 'id: "12" is not a UUID'),
        (body(queue_id="twelve"), 'queue_id: "twelve" is not an integer'),
        (orjson.dumps({"id": EID, "event": "leaving", "queue_id": 1}), "channel: is required"),
        (orjson.dumps({"id": EID, "queue_id": 1, "channel": "call"}), "event: is required"),
        (b'{"id": "x", "event": "lea', "not valid JSON"),
        (b"[1, 2]", "JSON array, not an object"),
        (b'"text"', "JSON string, not an object"),
        (b'{"id": "\xff"}', "not UTF-8"),
    ],
)
def test_invalid_events_name_the_fault(raw: bytes, words: str) -> None:
    assert words in invalid(raw).error


def test_an_oversized_body_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="over the limit of 100"):
        parse_event(body(destination="x" * 200), 100)


def test_the_event_id_is_kept_for_the_dead_letter_whenever_it_was_a_string() -> None:
    assert invalid(body(attempt_id="abc")).event_id == EID
    assert invalid(orjson.dumps({"id": 5, "event": "x"})).event_id is None


def test_unknown_top_level_keys_are_ignored() -> None:
    event = parse_event(body(tenant="t1", extra={"a": 1}), LIMIT)
    assert build_data(event, {}) == {"channel": "call"}


def test_numbers_and_booleans_of_variables_are_taken_as_their_json_text() -> None:
    # Contract §1: "numbers and booleans are taken as their JSON text". orjson reads 1.50 as
    # 1.5, 1e3 as 1000.0, -0 as 0 and an integer past 64 bits as a float: written back, none
    # was the text sent, and 2**70 lost its digits ("1.1805916207174113e+21").
    raw = (
        b'{"id":"%s","event":"joined","queue_id":1,"channel":"chat","variables":'
        b'{"a":1.50,"b":1e3,"c":-0,"d":%d,"e":true,"f":false,"g":7,"h":-0.0,"i":1E-7,'
        b'"j":0,"s":"1.50","n":null,"o":{"x":1.50},"l":[1.50]}}' % (EID.encode(), 2**70)
    )
    data = build_data(parse_event(raw, LIMIT), {})
    assert data == {
        "a": "1.50", "b": "1e3", "c": "-0", "d": str(2**70), "e": "true", "f": "false",
        "g": "7", "h": "-0.0", "i": "1E-7", "j": "0", "s": "1.50", "channel": "chat",
    }  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [EID, EID.upper(), "{" + EID + "}", "urn:uuid:" + EID, EID.replace("-", "")],
)
def test_an_id_in_a_form_uuid_parsers_take_is_kept_exactly_as_sent(text: str) -> None:
    assert parse_event(body(id=text), LIMIT).id == text


@pytest.mark.parametrize(
    "text",
    [
        " " + EID[1:],  # Python's uuid.UUID takes these: int(x, 16) strips blanks, signs,
        "+" + EID[1:],  # and reads any script's digits; hyphens are dropped wherever they are
        EID[:-1] + "\u0663",
        "\u0660" * 32,
        "-" + EID.replace("-", "") + "---",
        EID[:8] + EID[9:13] + "-" + EID[8:9] + EID[13:],
        "uuid:" + EID,
        "{" + EID,
        EID + "}",
        "urn:uuid:{" + EID + "}",
    ],
)
def test_an_id_that_is_no_uuid_spelling_is_invalid(text: str) -> None:
    error = invalid(body(id=text))
    assert error.error.endswith("is not a UUID") and error.event_id == text


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id":"%s","event":"joined","queue_id":1,"channel":"call","destination":"\xff"}',
        b'\xef\xbb\xbf{"id":"%s","event":"joined","queue_id":1,"channel":"call"}',
    ],
)
def test_a_body_that_is_not_utf8_json_still_names_its_string_id(raw: bytes) -> None:
    # Contract §6: queue-hooks-event-id "whenever the body had a string id".
    assert invalid(raw % EID.encode()).event_id == EID


@pytest.mark.parametrize(
    ("raw", "words"),
    [(b"null", "null"), (b"[1]", "array"), (b'"x"', "string"), (b"4", "number"),
     (b"4.5", "number"), (b"true", "boolean")],
)  # fmt: skip
def test_a_body_that_is_json_but_no_object_is_named_in_jsons_words(raw: bytes, words: str) -> None:
    assert invalid(raw).error == f"body is a JSON {words}, not an object"


@pytest.mark.parametrize(("name", "value"), [("attempt_id", "4_2"), ("call_bill_sec", "1_000.5")])
def test_digits_grouped_by_underscores_are_no_number(name: str, value: str) -> None:
    # int("4_2") is 42 in Python; no JSON or engine number is written so.
    assert invalid(body(**{name: value})).error.startswith(f'{name}: "{value}" is not')


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),
        ("2016-12-31t23:59:60.5z", "2017-01-01T00:00:00.500000Z"),
        ("2017-01-01T02:59:60+03:00", "2017-01-01T00:00:00Z"),
    ],
)
def test_a_leap_second_is_rfc3339_and_delivered_as_its_unix_instant(
    text: str, instant: str
) -> None:
    # RFC 3339 §5.6: time-second may be 60 (a leap second); datetime cannot hold it. It is
    # delivered as POSIX time counts it: the first instant of the next minute.
    event = parse_event(body(occurred_at=text), LIMIT)
    out = orjson.loads(build_body(event, datetime.now(UTC), 1, 1, b"{}"))
    assert out["timestamp"] == instant


@pytest.mark.parametrize(
    "text", ["2016-12-31T23:58:60Z", "2016-12-31T12:59:60Z", "2016-12-31T23:59:61Z"]
)
def test_a_second_60_off_a_leap_second_is_invalid(text: str) -> None:
    assert "is not an RFC 3339 timestamp" in invalid(body(occurred_at=text)).error


def test_a_queues_variables_keep_the_text_of_their_numbers() -> None:
    text = '{"a": 1.50, "b": 1180591620717411303424, "c": true, "d": null, "e": {"x": 1}, "f": "s"}'
    assert variables_from_text(text) == {
        "a": "1.50",
        "b": "1180591620717411303424",
        "c": "true",
        "f": "s",
    }
    assert all(type(v) is str for v in variables_from_text(text).values())
    with pytest.raises(ValueError, match="not an object"):
        variables_from_text("[1]")
