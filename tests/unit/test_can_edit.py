"""`can_edit` of the queue object: the same rule as the API's refusals (worker/api/rights.py)."""

from __future__ import annotations

from worker.api.rights import Caller, may_edit


def test_an_admin_token_may_edit_every_queue() -> None:
    assert may_edit(Caller(1, "a", domain_id=1, admin=True), 12)


def test_a_token_may_edit_only_where_it_was_granted_edit() -> None:
    caller = Caller(2, "b", domain_id=1, admin=False, grants={12: True, 13: False})
    assert may_edit(caller, 12)
    assert not may_edit(caller, 13)  # read only
    assert not may_edit(caller, 14)  # no grant
