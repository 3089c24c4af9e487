"""The eight queue events as pydantic models, and the one entry point that turns bytes into one.

The queue engine sends most values as strings; lax validation coerces them to the documented
types (contract §1). Each model carries only its event's fields (contract §3), so values of
fields the event does not deliver are ignored, and unknown keys too.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

Channel = Literal["call", "chat", "task"]


def _not_a_boolean(words: str) -> Any:
    # Lax mode reads `true` as 1; a JSON boolean is never a count or an id (`"queue_id": true`
    # would be queue 1, maybe another domain's: issue 12, defect 9). Lax mode also parses a
    # string as Python's int() and float() do, and those take "4_2" for 42: no JSON number,
    # nor the engine, writes digits so.
    def check(value: object) -> object:
        if isinstance(value, bool) or (isinstance(value, str) and "_" in value):
            raise ValueError(words)
        return value

    return BeforeValidator(check)


# Integers are 64-bit, as JSON out (orjson) and the database's bigint ids hold them: a bigger
# one is invalid rather than an event no payload can be written for (issue 6).
_Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Int = Annotated[_Int64, _not_a_boolean("is not an integer")]
# Smart union: "12" stays an integer, "12.5" becomes 12.5 (contract §1); an integer too big
# for 64 bits is taken as the number it is, a float.
Number = Annotated[_Int64 | float, _not_a_boolean("is not a number")]

CALL_FIELDS: Final = frozenset(
    {
        "call_bill_sec",
        "call_duration",
        "amd_result",
        "call_voice_sec",
        "call_cause",
        "call_sip_code",
    }
)

_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z"
)


class InvalidEvent(Exception):
    """An event that can never be delivered: dead-lettered with reason `invalid`."""

    def __init__(self, error: str, event_id: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.event_id = event_id


def coerce_variables(raw: object) -> dict[str, str]:
    """Strings stay, numbers and booleans become their JSON text, null and nested values go."""
    if not isinstance(raw, dict):
        raise ValueError("is not an object")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool | int | float):
            out[key] = orjson.dumps(value).decode()
    return out


def _parse_rfc3339(value: object) -> object:
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("is not an RFC 3339 timestamp")
    leap = value[17:19] == "60"  # RFC 3339 §5.6: a leap second, which datetime cannot hold
    text = value[:17] + "59" + value[19:] if leap else value
    try:
        moment = datetime.fromisoformat(text.upper().replace(" ", "T"))
        in_utc = moment.astimezone(UTC)  # 0001-01-01T00:00:00+01:00 is valid, but not in UTC
    except (ValueError, OverflowError):
        raise ValueError("is not an RFC 3339 timestamp") from None
    if not leap:
        return moment
    if (in_utc.hour, in_utc.minute) != (23, 59):  # only the last minute of a UTC day has one
        raise ValueError("is not an RFC 3339 timestamp")
    # Delivered as POSIX time counts it (contract §5: the same instant, normalised to UTC is
    # fine): the leap second is the first second of the next day.
    try:
        return (in_utc + timedelta(seconds=1)).astimezone(moment.tzinfo)
    except OverflowError:  # 9999-12-31T23:59:60Z: no next day in the calendar
        raise ValueError("is not an RFC 3339 timestamp") from None


# A UUID as RFC 9562 writes it (hex digits in either case), bare, in braces, as a URN, or
# without its hyphens: the spellings UUID parsers take (Go's uuid.Parse, Python's, .NET's).
# Not uuid.UUID itself: it drops hyphens wherever they are, and int(x, 16) takes blanks, a
# sign and any script's digits, so " 190a..." or "\u0660" * 32 passed, and went into webhook-id.
_CANONICAL = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_UUID: Final = re.compile(
    rf"(?:urn:uuid:|URN:UUID:)?{_CANONICAL}\Z|\{{{_CANONICAL}\}}\Z|[0-9A-Fa-f]{{32}}\Z"
)


def _check_uuid(value: str) -> str:
    if not _UUID.match(value):
        raise ValueError("is not a UUID")
    return value  # kept exactly as sent (contract §5)


class _Envelope(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, coerce_numbers_to_str=True, allow_inf_nan=False
    )

    id: Annotated[str, Field(strict=True)]
    queue_id: Int
    occurred_at: Annotated[datetime | None, BeforeValidator(_parse_rfc3339)] = None
    variables: Annotated[dict[str, str], BeforeValidator(coerce_variables)] = Field(
        default_factory=dict
    )
    # Group C: every event carries it.
    channel: Channel
    attempt_id: Int | None = None
    destination: str | None = None
    use_processing: bool | None = None
    agent_channel_id: str | None = None
    member_channel_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _absent(cls, data: Any) -> Any:
        # The engine sends null for what it does not know: that is a field it did not carry.
        # A chat or a task delivers no call field (§3), so their values are not read (§1).
        if not isinstance(data, dict):
            return data
        if data.get("channel") == "call":
            return {k: v for k, v in data.items() if v is not None}
        return {k: v for k, v in data.items() if v is not None and k not in CALL_FIELDS}

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return _check_uuid(value)


class _Agent(BaseModel):
    agent_name: str | None = None
    agent_id: Int | None = None
    user_id: Int | None = None
    agent_extension: str | None = None
    member_name: str | None = None
    member_id: Int | None = None
    cc_attempt_seq: Int | None = None


class _Billing(BaseModel):
    call_bill_sec: Number | None = None
    call_duration: Number | None = None
    amd_result: str | None = None


class _Media(_Billing):
    call_voice_sec: Number | None = None


class _Hangup(_Media):
    call_cause: str | None = None
    call_sip_code: Int | None = None


class Joined(_Envelope):
    event: Literal["joined"]


class Answered(_Envelope, _Agent, _Media):
    event: Literal["answered"]


class Offering(_Envelope, _Agent, _Media):
    event: Literal["offering"]


class Bridged(_Envelope, _Agent, _Media):
    event: Literal["bridged"]


class Missed(_Envelope, _Agent, _Billing):
    event: Literal["missed"]


class Leaving(_Envelope, _Agent, _Hangup):
    event: Literal["leaving"]
    cc_result: str | None = None


class Processing(_Envelope, _Agent, _Hangup):
    event: Literal["processing"]


class Active(_Envelope, _Agent, _Media):
    event: Literal["active"]


Event = Joined | Answered | Offering | Bridged | Missed | Leaving | Processing | Active
MODELS: Final[tuple[type[_Envelope], ...]] = (
    Joined, Answered, Offering, Bridged, Missed, Leaving, Processing, Active,
)  # fmt: skip
_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Annotated[Event, Field(discriminator="event")])

ENVELOPE_FIELDS: Final = frozenset({"id", "event", "queue_id", "occurred_at", "variables"})
# Names of every documented field of every event: no variable may pose as one (contract §3).
RESERVED: Final = frozenset(
    name for model in MODELS for name in model.model_fields if name not in ENVELOPE_FIELDS
)
FIELDS_OF: Final[dict[str, tuple[str, ...]]] = {
    m.model_fields["event"].annotation.__args__[0]: tuple(  # type: ignore[union-attr]
        n for n in m.model_fields if n not in ENVELOPE_FIELDS
    )
    for m in MODELS
}


# An oversized body is still read for its id (for the dead letter's header), up to this size.
_ID_SCAN_LIMIT: Final = 16 << 20


def _id_of(body: bytes) -> str | None:
    """The string `id` of a body refused whole, for its dead letter (contract §6: "whenever
    the body had a string id"): read past bytes that are not UTF-8 and a byte order mark."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            raw = orjson.loads(body.decode("utf-8", "replace").removeprefix("\ufeff"))
        except orjson.JSONDecodeError:
            return None
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


_JSON_TYPES: Final = {
    list: "array", str: "string", int: "number", float: "number", bool: "boolean",
    type(None): "null",
}  # fmt: skip


def _read_otherwise(variables: dict[str, Any]) -> bool:
    """Whether a variable's number may not be written back as it was sent: orjson reads 1.50
    as 1.5, 1e3 as 1000.0, -0 as 0, an integer past 64 bits as a float (its digits lost)."""
    return any(type(v) is float or (type(v) is int and v == 0) for v in variables.values())


class _Written(str):
    """A number's text as the body wrote it."""

    __slots__ = ()


def variables_from_text(text: str) -> dict[str, str]:
    """A queue's variables from the database's JSON text of them (`variables::text`): its
    numbers as jsonb writes them (1.50 stays "1.50", 2**70 keeps its digits), as an event's
    are taken as the body wrote them; orjson would read them back as a float. Rare (a queue's
    change), so the slower parser that keeps a number's text costs nothing that matters."""
    raw = json.loads(text, parse_float=_Written, parse_int=_Written)
    if not isinstance(raw, dict):
        raise ValueError("is not an object")
    return coerce_variables({k: str(v) if isinstance(v, _Written) else v for k, v in raw.items()})


def _as_written(body: bytes, variables: dict[str, Any]) -> dict[str, Any]:
    """The variables with each number as its JSON text (contract §1), read again by a parser
    that keeps it: the rare event whose variables hold such a number pays for it alone."""
    try:
        again = json.loads(body, parse_float=_Written, parse_int=_Written).get("variables")
    except RecursionError:  # nested deeper than this parser goes (orjson took it)
        return variables
    if not isinstance(again, dict):
        return variables
    return {k: str(v) if isinstance(v, _Written) else v for k, v in again.items()}


def parse_event(body: bytes, max_bytes: int) -> Event:
    """Validate one message body; raises InvalidEvent with one human line naming the fault."""
    if len(body) > max_bytes:
        error = f"body is {len(body)} bytes, over the limit of {max_bytes}"
        raise InvalidEvent(error, _id_of(body) if len(body) <= _ID_SCAN_LIMIT else None)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"body is not UTF-8 (byte {exc.start})", _id_of(body)) from None
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"body is not valid JSON: {exc}", _id_of(body)) from None
    if not isinstance(raw, dict):
        raise InvalidEvent(f"body is a JSON {_JSON_TYPES[type(raw)]}, not an object")
    event_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    variables = raw.get("variables")
    if isinstance(variables, dict) and _read_otherwise(variables):
        raw["variables"] = _as_written(body, variables)
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise InvalidEvent(describe(exc), event_id) from None


_TYPE_WORDS: Final = {
    "greater_than_equal": "is out of range (64-bit integer)",
    "less_than_equal": "is out of range (64-bit integer)",
    "int": "is not an integer",
    "float": "is not a number",
    "finite": "is not a finite number",
    "bool": "is not a boolean",
    "string": "is not a string",
    "dict": "is not an object",
}


def describe(exc: ValidationError) -> str:
    """One human line per fault, e.g. `attempt_id: "abc" is not an integer`."""
    lines = (_describe_one(err) for err in exc.errors(include_url=False))
    return "; ".join(dict.fromkeys(lines))  # a Number's two union branches say the same thing


def _describe_one(err: Any) -> str:
    kind: str = err["type"]
    loc = [str(p) for p in err["loc"]]
    if loc and loc[0] in FIELDS_OF:  # the discriminated union puts the event name first
        loc = loc[1:]
    if len(loc) > 1 and loc[-1] in ("int", "float", "constrained-int"):  # a Number's branches
        loc = loc[:-1]
        kind = "float_parsing"
    name = ".".join(loc) or "event"
    shown = _show(err.get("input"))
    if kind == "missing":
        return f"{name}: is required"
    if kind == "union_tag_not_found":
        return "event: is required"
    if kind == "union_tag_invalid":
        return f"event: {_show(err['ctx']['tag'])} is not one of {', '.join(FIELDS_OF)}"
    if kind == "literal_error":
        return f"{name}: {shown} is not one of {err['ctx']['expected'].replace(chr(39), '')}"
    if kind == "value_error":
        return f"{name}: {shown} {err['ctx']['error']}"
    for prefix, words in _TYPE_WORDS.items():
        if kind.startswith(prefix):
            return f"{name}: {shown} {words}"
    return f"{name}: {shown} {err['msg']}"


def _show(value: object, limit: int = 60) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def occurred_at(event: Event, received_at: datetime) -> str:
    """RFC 3339 in UTC, microseconds when there are any."""
    moment = (event.occurred_at or received_at).astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")
