"""Property-based fuzzing of `queue-hooks api` from its own OpenAPI document (schemathesis):
whatever is sent, never a 5xx, and every error is the §8 object."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.integration.conftest import MakeToken
from tests.support.helpers import Conn, seed_hook, seed_queue, seed_schema

ERROR_KEYS = {"id", "code", "status", "detail"}


Fuzzed = tuple[Any, str]


@pytest.fixture
async def api_schema(db: Conn, api_url: str, make_token: MakeToken) -> Fuzzed:
    await seed_queue(db, 1, 0)
    await seed_hook(db, 1, "joined", await seed_schema(db, "https://crm.example/", name="CRM"))
    _id, token = await make_token(admin_=True)
    return schemathesis.openapi.from_url(api_url + "/openapi.json"), token


def test_no_5xx_and_every_error_in_shape(api_schema: Fuzzed) -> None:
    """Each operation in turn, valid and invalid data, a modest number of examples each."""
    loaded, token = api_schema
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= 13

    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case: Any) -> None:
            response = case.call(headers={"X-Webitel-Access": token}, timeout=10)
            where = (case.method, case.formatted_path, case.query, case.body)
            assert response.status_code < 500, (where, response.text)
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == ERROR_KEYS, (where, body)
                assert body["code"] == response.status_code

        check()
