"""The eight queue types and which events each fires (contract §4).

The database enforces the same table (deploy/sql); a test checks the two agree.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

EventName = Literal[
    "joined", "answered", "offering", "bridged", "missed", "leaving", "processing", "active"
]
EVENTS: Final[tuple[EventName, ...]] = get_args(EventName)

LABELS_RU: Final[dict[EventName, str]] = {
    "joined": "Абонент вошел в очередь",
    "answered": "Принят оператором",
    "offering": "Распределение на оператора",
    "bridged": "Соединение абонента с оператором",
    "missed": "Пропущенный оператором",
    "leaving": "Абонент вышел из очереди",
    "processing": "Постобработка",
    "active": "Активное действие",
}

LABELS_EN: Final[dict[EventName, str]] = {
    "joined": "Member joined the queue",
    "answered": "Answered by an agent",
    "offering": "Offering to an agent",
    "bridged": "Member bridged with an agent",
    "missed": "Missed by an agent",
    "leaving": "Member left the queue",
    "processing": "Post-processing",
    "active": "Active action",
}

QUEUE_TYPES: Final[dict[int, str]] = {
    0: "offline queue",
    1: "inbound queue",
    2: "outbound IVR",
    3: "preview dialer",
    4: "progressive dialer",
    5: "predictive dialer",
    6: "inbound chat queue",
    7: "task queue",
}

_ALL_BUT_ACTIVE: Final = frozenset(EVENTS) - {"active"}
_NO_ANSWERED: Final = _ALL_BUT_ACTIVE - {"answered"}

FIRES: Final[dict[int, frozenset[str]]] = {
    0: _ALL_BUT_ACTIVE,
    1: _NO_ANSWERED,
    2: frozenset({"joined", "offering", "bridged", "leaving"}),
    3: _ALL_BUT_ACTIVE,
    4: _NO_ANSWERED,
    5: _NO_ANSWERED,
    6: _NO_ANSWERED | {"active"},
    7: _NO_ANSWERED | {"active"},
}


def fires(queue_type: int, event: str) -> bool:
    return event in FIRES.get(queue_type, frozenset())


def events_fired(queue_type: int) -> list[str]:
    """In the contract's order, for messages that list them."""
    return [e for e in EVENTS if fires(queue_type, e)]
