"""The permission decisions of contract §9, pure."""

from __future__ import annotations

import pytest

from worker.api import rights
from worker.api.rights import Caller, Need, Verdict

ADMIN = Caller(1, "a", domain_id=1, admin=True)
READER = Caller(2, "r", domain_id=1, admin=False, grants={12: False})
EDITOR = Caller(3, "e", domain_id=1, admin=False, grants={12: True, 13: False})
NOBODY = Caller(4, "n", domain_id=1, admin=False)


@pytest.mark.parametrize(
    ("who", "queue", "domain", "need", "verdict"),
    [
        (ADMIN, 12, 1, Need.EDIT, Verdict.ALLOWED),
        (ADMIN, 12, 2, Need.READ, Verdict.HIDDEN),  # another domain: 404, even for an admin
        (ADMIN, 12, None, Need.READ, Verdict.HIDDEN),  # no such queue
        (READER, 12, 1, Need.READ, Verdict.ALLOWED),
        (READER, 12, 1, Need.EDIT, Verdict.FORBIDDEN),
        (READER, 13, 1, Need.READ, Verdict.FORBIDDEN),
        (READER, 12, 2, Need.READ, Verdict.HIDDEN),
        (EDITOR, 12, 1, Need.EDIT, Verdict.ALLOWED),
        (EDITOR, 12, 1, Need.READ, Verdict.ALLOWED),  # edit implies read
        (EDITOR, 13, 1, Need.EDIT, Verdict.FORBIDDEN),
        (NOBODY, 12, 1, Need.READ, Verdict.FORBIDDEN),
    ],
)
def test_on_queue(
    who: Caller, queue: int, domain: int | None, need: Need, verdict: Verdict
) -> None:
    assert rights.on_queue(who, queue, domain, need) is verdict


def test_listings_and_schemas() -> None:
    assert rights.readable_queues(ADMIN) is None
    assert rights.readable_queues(EDITOR) == [12, 13]
    assert rights.readable_queues(NOBODY) == []
    assert rights.may_search_schemas(READER) is Verdict.ALLOWED
    assert rights.may_search_schemas(NOBODY) is Verdict.FORBIDDEN
    assert rights.on_schema(ADMIN, 1) is Verdict.ALLOWED
    assert rights.on_schema(ADMIN, 2) is Verdict.HIDDEN
    assert rights.on_schema(EDITOR, 1) is Verdict.FORBIDDEN
    assert rights.on_schema(EDITOR, None) is Verdict.HIDDEN
    assert rights.may_add_schema(EDITOR) is Verdict.FORBIDDEN


def test_tokens_are_random_and_stored_as_a_digest() -> None:
    a, b = rights.new_token(), rights.new_token()
    assert a != b and a.startswith("qh_") and len(a) >= 40
    assert rights.digest(a) == rights.digest(a) and len(rights.digest(a)) == 32
    assert a not in repr(READER) and "grants" not in repr(READER)
