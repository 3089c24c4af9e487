"""What the admin commands change reaches a running worker, without a restart (contract §2)."""

from __future__ import annotations

import re

from standardwebhooks.webhooks import Webhook

from tests.support.cache import caught_up
from tests.support.cli import cli
from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, delivered
from tests.support.receiver import Receiver

KEY = "the operator's key, shared by the worker and the admin"


def secret_of(out: str) -> str:
    found = re.search(r"^secret: (whsec_\S+)$", out, re.MULTILINE)
    assert found is not None, out
    return found[1]


async def test_changes_made_with_the_commands_reach_a_running_worker(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    env = {"QUEUE_HOOKS_SECRET_KEY": KEY}
    setup: list[tuple[object, ...]] = [
        ("queues", "add", "--id", 1, "--domain", 1, "--name", "Q", "--type", 1, "--var", "v=1"),
        ("schemas", "add", "--domain", 1, "--name", "Marker", "--url", receiver.url("/marker")),
        ("hooks", "add", "--queue", 1, "--event", "joined", "--schema", "marker"),
    ]  # fmt: skip
    for args in setup:
        assert (await cli(*args)).ok
    worker = await start_worker(secret_key=KEY)
    assert await delivered(platform, receiver, "/crm") == []

    # Added: called, signed with the secret printed once (stored encrypted).
    crm = ("schemas", "add", "--domain", 1, "--name", "CRM", "--url", receiver.url("/crm"))
    added = await cli(*crm, env=env)
    secret = secret_of(added.ok)
    assert (await cli("hooks", "add", "--queue", 1, "--event", "joined", "--schema", "CRM")).ok
    await caught_up(worker, db)
    (got,) = await delivered(platform, receiver, "/crm")
    Webhook(secret).verify(got.body, got.headers)
    assert got.json["data"]["v"] == "1"  # type: ignore[index]

    # Rotated: signed with the new secret and, during the grace, with the previous one too.
    new = secret_of((await cli("schemas", "rotate-secret", 2, env=env)).ok)
    await caught_up(worker, db)
    (got,) = await delivered(platform, receiver, "/crm")
    assert len(got.headers["webhook-signature"].split()) == 2
    Webhook(new).verify(got.body, got.headers)
    Webhook(secret).verify(got.body, got.headers)

    # Disabled: not called.
    assert (await cli("hooks", "disable", 2)).ok == "disabled hook 2\n"
    await caught_up(worker, db)
    assert await delivered(platform, receiver, "/crm") == []

    # Enabled again, and the schema pointed elsewhere: called there.
    assert (await cli("hooks", "enable", 2)).ok == "enabled hook 2\n"
    assert (await cli("schemas", "edit", 2, "--url", receiver.url("/crm2"))).ok
    await caught_up(worker, db)
    (got,) = await delivered(platform, receiver, "/crm2")
    assert got.json["hook_id"] == 2

    # Deleted: not called.
    assert (await cli("hooks", "delete", 2, "--yes")).ok == "deleted hook 2\n"
    await caught_up(worker, db)
    assert await delivered(platform, receiver, "/crm2") == []
