"""The body POSTed to a schema (contract §5), built without I/O.

`data` is the same for every hook of an event, so it is serialised once and spliced into each
hook's body: fan-out costs one small concatenation per hook, not one serialisation.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from schemas.events import FIELDS_OF, RESERVED, Event, occurred_at


def build_data(event: Event, queue_variables: dict[str, str]) -> dict[str, object]:
    """Queue variables < member variables < the event's documented fields (contract §3)."""
    data: dict[str, object] = {k: v for k, v in queue_variables.items() if k not in RESERVED}
    member = event.variables
    if RESERVED.isdisjoint(member):  # the usual case: no filtering pass (about 1 us an event)
        data.update(member)
    else:
        data.update((k, v) for k, v in member.items() if k not in RESERVED)
    carried = event.model_fields_set  # a chat's call fields are never carried (schemas.events)
    values = event.__dict__  # a pydantic model's field values; getattr costs more a field
    for name in FIELDS_OF[event.event]:
        if name in carried:
            data[name] = values[name]
    return data


def encode_data(event: Event, queue_variables: dict[str, str]) -> bytes:
    return orjson.dumps(build_data(event, queue_variables))


def build_body(
    event: Event, received_at: datetime, hook_id: int, schema_id: int, data_json: bytes
) -> bytes:
    head = orjson.dumps(
        {
            "type": event.event,
            "id": event.id,
            "timestamp": occurred_at(event, received_at),
            "queue_id": event.queue_id,
            "hook_id": hook_id,
            "schema_id": schema_id,
        }
    )
    return head[:-1] + b',"data":' + data_json + b"}"
