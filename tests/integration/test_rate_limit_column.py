"""`schemas.max_per_second` (deploy/sql/0004): NULL for no limit, else a positive finite number."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.helpers import Conn, seed_schema


async def test_null_means_no_limit_and_a_positive_number_is_kept(db: Conn) -> None:
    schema_id = await seed_schema(db, "https://crm.example/hook")
    assert await db.fetchval(
        "SELECT max_per_second FROM queue_hooks.schemas WHERE id = $1", schema_id
    ) is None  # fmt: skip
    await db.execute("UPDATE queue_hooks.schemas SET max_per_second = 0.5 WHERE id = $1", schema_id)
    assert (
        await db.fetchval("SELECT max_per_second FROM queue_hooks.schemas WHERE id = $1", schema_id)
        == 0.5
    )


@pytest.mark.parametrize("bad", ["0", "-1", "'NaN'", "'Infinity'"])
async def test_zero_negative_nan_and_infinity_are_refused(db: Conn, bad: str) -> None:
    schema_id = await seed_schema(db, "https://crm.example/hook")
    with pytest.raises(asyncpg.CheckViolationError, match="schemas_max_per_second_check"):
        await db.execute(
            f"UPDATE queue_hooks.schemas SET max_per_second = {bad} WHERE id = $1", schema_id
        )
