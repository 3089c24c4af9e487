"""Writes outside the cache: what the worker and the admin commands change in the tables."""

from __future__ import annotations

from worker.store.db import connect


async def disable_hook(dsn: str, hook_id: int) -> bool:
    """After a 410 Gone (contract §5). True when a hook was enabled and is now disabled."""
    conn = await connect(dsn)
    try:
        status: str = await conn.execute(
            "UPDATE queue_hooks.hooks SET enabled = false WHERE id = $1 AND enabled", hook_id
        )
    finally:
        await conn.close()
    return status.endswith(" 1")
