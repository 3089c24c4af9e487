"""The frames of a delivery decoded without pamqp's dispatch (worker/broker/frames.py,
`unmarshal`) against pamqp's own `frame.unmarshal`: the same objects from the same bytes,
whatever the fields hold, and pamqp's judgement (the same error) on a frame it refuses."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import pamqp.frame
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.exceptions import UnmarshalingException
from pamqp.header import ContentHeader

from worker.broker.frames import unmarshal

short = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)
name = st.from_regex(r"[a-zA-Z0-9_.:-]{0,40}", fullmatch=True)  # pamqp's rule for an exchange
table = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.one_of(st.integers(-(2**31), 2**31 - 1), st.text(max_size=20), st.booleans()),
    max_size=4,
)
stamp = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
PROPERTIES: dict[str, Any] = {
    "content_type": short, "content_encoding": short, "headers": table,
    "delivery_mode": st.sampled_from([1, 2]), "priority": st.integers(0, 9),
    "correlation_id": short, "reply_to": short, "expiration": st.integers(1, 10**6).map(str),
    "message_id": short, "timestamp": stamp, "message_type": short, "user_id": short,
    "app_id": short,
}  # fmt: skip


def fields(value: Any) -> Any:
    """What a decoded frame holds, comparable."""
    if isinstance(value, ContentHeader):
        held = {k: getattr(value.properties, k) for k in Basic.Properties.__slots__}
        return value.class_id, value.weight, value.body_size, held
    if isinstance(value, ContentBody):
        return value.value
    return {k: getattr(value, k) for k in value.__slots__}


def same(frame: bytes) -> Any:
    ours, theirs = unmarshal(frame), pamqp.frame.unmarshal(frame)
    assert ours[:2] == theirs[:2]  # bytes used, channel
    assert type(ours[2]) is type(theirs[2])
    return ours[2], theirs[2]


@given(short, st.integers(0, 2**63 - 1), st.booleans(), name, short, st.integers(0, 65535))
def test_a_deliver_decodes_as_pamqp_decodes_it(
    tag: str, delivery: int, again: bool, exchange: str, key: str, channel: int
) -> None:
    method = Basic.Deliver(tag, delivery, again, exchange, key)
    ours, theirs = same(pamqp.frame.marshal(method, channel))
    for name in Basic.Deliver.__slots__:
        assert getattr(ours, name) == getattr(theirs, name) == getattr(method, name), name


@given(st.fixed_dictionaries({}, optional=PROPERTIES), st.integers(0, 2**40))
def test_a_content_header_decodes_as_pamqp_decodes_it(values: dict[str, Any], size: int) -> None:
    header = ContentHeader(0, size, Basic.Properties(**values))
    ours, theirs = same(pamqp.frame.marshal(header, 1))
    assert (ours.class_id, ours.weight, ours.body_size) == (60, 0, size)
    assert (theirs.class_id, theirs.weight, theirs.body_size) == (60, 0, size)
    assert ours.properties == theirs.properties
    for name, value in values.items():
        if value != "":  # pamqp does not send an empty property
            assert getattr(ours.properties, name) == value, name


@given(st.binary(min_size=1, max_size=3000))  # an empty body frame: pamqp refuses it (below)
def test_a_body_is_its_bytes(data: bytes) -> None:
    ours, theirs = same(pamqp.frame.marshal(ContentBody(data), 1))
    assert ours.value == theirs.value == data


def test_other_frames_are_pamqp_s_own() -> None:
    for method in (Basic.Ack(7, multiple=True), Basic.ConsumeOk("ctag"), Basic.Nack(3)):
        ours, theirs = same(pamqp.frame.marshal(method, 2))
        assert fields(ours) == fields(theirs) == fields(method)


def deliver_payload(routing_key: bytes) -> bytes:
    head = struct.pack(">I", Basic.Deliver.index) + b"\x04ctag" + struct.pack(">Q", 9) + b"\x00"
    return head + b"\x02ex" + bytes([len(routing_key)]) + routing_key


def framed(kind: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", kind, 1, len(payload)) + payload + end


@pytest.mark.parametrize(
    ("frame", "refused"),
    [
        (framed(1, deliver_payload(b"\xff\xfe")), True),  # a routing key that is not UTF-8
        (framed(1, deliver_payload(b"key"), end=b"\x00"), True),  # no frame-end octet
        (framed(3, b""), True),  # a body frame of no size
        (framed(2, struct.pack(">HHQH", 60, 0, 5, 0x8000) + b"\x09json"), False),  # cut short
        (framed(1, deliver_payload(b"key")[:-2]), False),  # a string longer than its frame
        (framed(1, deliver_payload(b"key") + b"x"), False),  # bytes after the last field
        (framed(2, struct.pack(">HHQHH", 60, 0, 5, 0x0001, 0)), False),  # two words of flags
        (framed(1, deliver_payload(b"key")[:12]), None),  # cut inside the delivery tag
        (framed(2, struct.pack(">HHQ", 60, 0, 5)), None),  # no property flags at all
    ],
    ids=[
        "not-utf8",
        "no-end",
        "empty-body",
        "cut-property",
        "long-string",
        "trailing",
        "flags2",
        "cut-tag",
        "no-flags",
    ],
)
def test_an_odd_frame_is_whatever_pamqp_makes_of_it(frame: bytes, refused: bool | None) -> None:
    """pamqp refuses some and reads others leniently; the fast path is never the judge.
    None: whichever pamqp does, as long as the fast path does the same."""
    if refused is None:
        try:
            pamqp.frame.unmarshal(frame)
        except UnmarshalingException:
            refused = True
        else:
            refused = False
    if not refused:
        ours, theirs = same(frame)
        assert fields(ours) == fields(theirs)
        return
    with pytest.raises(UnmarshalingException) as theirs_error:
        pamqp.frame.unmarshal(frame)
    with pytest.raises(UnmarshalingException) as ours_error:
        unmarshal(frame)
    # The message names the object being decoded, with its address: compare what follows.
    assert str(ours_error.value).split(">")[-1] == str(theirs_error.value).split(">")[-1]
