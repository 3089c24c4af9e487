"""The platform's own JS client, unchanged (webitel-sdk, pinned in tests/sdk/package-lock.json),
drives `queue-hooks api`. Needs Node.js; `npm ci` installs the pinned client on first use."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.conftest import MakeToken
from tests.support.helpers import Conn, seed_queue, seed_schema

SDK = Path(__file__).resolve().parents[1] / "sdk"


@pytest.fixture(scope="session")
async def sdk() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js is not installed: install nodejs and npm to run the webitel-sdk test")
    if not (SDK / "node_modules" / "webitel-sdk").is_dir():
        proc = await asyncio.create_subprocess_exec(
            "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", cwd=SDK,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            pytest.skip(f"npm ci failed (no npm registry?): {out.decode()[-300:]}")
    return SDK


async def test_webitel_sdk_queue_hook_service(
    db: Conn, api_url: str, make_token: MakeToken, sdk: Path
) -> None:
    await seed_queue(db, 12, 0)
    crm = await seed_schema(db, "https://crm.example/h", name="CRM")
    alerts = await seed_schema(db, "https://alerts.example/h", name="Alerts")
    token_id, token = await make_token(grants={12: "edit"}, name="sdk")
    proc = await asyncio.create_subprocess_exec(
        "node", "drive.cjs", api_url, token, "12", str(crm), str(alerts), cwd=sdk,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    got: dict[str, Any] = orjson.loads(out)
    first, second = got["created"], got["second"]
    assert first["event"] == "joined" and first["schema"] == {"id": str(crm), "name": "CRM"}
    assert first["enabled"] is True and first["queue_id"] == 12
    assert first["updated_by"] == {"id": str(token_id), "name": "sdk"}
    assert second["schema"]["id"] == str(alerts) and second["enabled"] is True
    assert got["read"] == first
    assert [h["id"] for h in got["search"]["items"]] == [second["id"]]
    assert got["search"]["next"] is True
    assert [h["id"] for h in got["page2"]["items"]] == [first["id"]]
    assert got["page2"]["next"] is False
    assert [h["id"] for h in got["byQ"]["items"]] == [second["id"]]
    assert [h["id"] for h in got["byId"]["items"]] == [first["id"]]
    assert [h["id"] for h in got["bySchema"]["items"]] == [second["id"]]
    assert [h["id"] for h in got["byEvent"]["items"]] == [first["id"]]
    updated = got["updated"]
    assert (updated["event"], updated["schema"]["id"], updated["enabled"]) == (
        "missed", str(alerts), False)  # fmt: skip
    patched = got["patched"]  # `fields` kept the change to `enabled`
    assert (patched["event"], patched["enabled"]) == ("missed", True)
    assert got["deleted"]["id"] == first["id"]
    after = got["afterDelete"]
    assert after["status"] == 404 and set(after["data"]) == {"id", "code", "status", "detail"}
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.hooks") == 1
