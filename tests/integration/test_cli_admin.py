"""`queue-hooks hooks ...` against the real database: every command, every refusal.

Each run is a separate process, as an admin's; tests/cli.py checks none ever shows a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from schemas.queue_types import EVENTS, LABELS_RU, fires
from tests.support.cli import cli, cli_on_terminal
from tests.support.helpers import Conn, seed_hook, seed_queue, seed_schema


async def hook_rows(db: Conn) -> list[tuple[object, ...]]:
    rows = await db.fetch(
        "SELECT id, queue_id, event, schema_id, enabled FROM queue_hooks.hooks ORDER BY id"
    )
    return [tuple(r) for r in rows]


# -- add ---------------------------------------------------------------------------------------
async def test_add_by_id_by_whole_name_and_by_part_of_it(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    crm = await seed_schema(db, "https://crm.example/a", name="CRM")
    staging = await seed_schema(db, "https://crm.example/b", name="CRM Staging")
    alerts = await seed_schema(db, "https://alerts.example/", name="Supervisor Alerts")

    ran = await cli("hooks", "add", "--queue", 12, "--event", "leaving", "--schema", crm)
    assert ran.ok.startswith(f"added hook 1: on \"leaving\" of queue 12 call schema {crm} 'CRM'")
    # "crm" is part of two names, but the whole of one: that one, in any case.
    await cli("hooks", "add", "--queue", 12, "--event", "joined", "--schema", "crm")
    await cli("hooks", "add", "--queue", 12, "--event", "joined", "--schema", "ALERTS")
    ran = await cli(
        "hooks", "add", "--queue", 12, "--event", "missed", "--schema", "staging", "--disabled"
    )
    assert "(disabled)" in ran.ok
    assert await hook_rows(db) == [
        (1, 12, "leaving", crm, True),
        (2, 12, "joined", crm, True),
        (3, 12, "joined", alerts, True),
        (4, 12, "missed", staging, False),
    ]


async def test_several_matching_schemas_are_listed_and_nothing_is_added(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    one = await seed_schema(db, "https://crm.example/1", name="CRM one")
    two = await seed_schema(db, "https://crm.example/2", name="crm two")
    await seed_schema(db, "https://crm.example/3", name="CRM three", domain=2)
    line = (await cli("hooks", "add", "--queue", 12, "--event", "joined", "--schema", "Crm")).error
    assert f"2 schemas of domain 1 match 'Crm': {one} 'CRM one', {two} 'crm two'" in line
    assert "three" not in line and "nothing changed" in line
    assert await hook_rows(db) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(("--queue", 99, "--event", "joined", "--schema", "CRM"), "no queue 99",
                     id="unknown-queue"),
        pytest.param(("--event", "answered", "--schema", "CRM"),
                     'queue 12 (inbound queue) never fires "answered"; it fires: joined, '
                     "offering, bridged, missed, leaving, processing", id="event-never-fired"),
        pytest.param(("--event", "active", "--schema", "CRM"),
                     'never fires "active"', id="active-on-a-call-queue"),
        pytest.param(("--event", "joined", "--schema", "9"),
                     "no schema with id or name '9' in domain 1 (queue 12's domain)",
                     id="unknown-schema-id"),
        pytest.param(("--event", "joined", "--schema", "9" * 20),
                     f"no schema with id or name '{'9' * 20}' in domain 1",
                     id="schema-id-beyond-bigint"),
        pytest.param(("--event", "joined", "--schema", "nothing"),
                     "no schema named like 'nothing' in domain 1", id="unknown-schema-name"),
        pytest.param(("--event", "joined", "--schema", "2"),
                     "schema 2 'Elsewhere' is in domain 2, but queue 12 is in domain 1",
                     id="schema-of-another-domain"),
        pytest.param(("--event", "joined", "--schema", "elsewhere"),
                     "in other domains: 2 'Elsewhere' (domain 2)",
                     id="name-only-in-another-domain"),
        pytest.param(("--event", "leaving", "--schema", "crm"),
                     "hook 1 already calls schema 1 'CRM' on \"leaving\" of queue 12",
                     id="duplicate"),
        pytest.param(("--event", "left", "--schema", "CRM"),
                     "Invalid value for '--event': 'left' is not one of 'joined',",
                     id="unknown-event"),
        pytest.param(("--event", "joined"), "Missing option '--schema'", id="missing-option"),
    ],
)  # fmt: skip
async def test_add_refused(db: Conn, args: tuple[object, ...], says: str) -> None:
    await seed_queue(db, 12, 1)  # inbound queue, domain 1
    crm = await seed_schema(db, "https://crm.example/", name="CRM")
    await seed_schema(db, "https://elsewhere.example/", name="Elsewhere", domain=2)
    await seed_hook(db, 12, "leaving", crm)
    before = await hook_rows(db)
    queue = () if "--queue" in args else ("--queue", 12)
    assert says in (await cli("hooks", "add", *queue, *args)).error
    assert await hook_rows(db) == before


# -- list --------------------------------------------------------------------------------------
async def seed_many(db: Conn) -> list[int]:
    """49 hooks on queue 12 (offline queue: 7 events x 7 schemas); the `missed` ones off."""
    await seed_queue(db, 12, 0)
    events = [e for e in EVENTS if fires(0, e)]
    ids = []
    for n in range(7):
        schema = await seed_schema(db, f"https://crm.example/{n}", name=f"Schema {n}")
        for name in events:
            ids.append(await seed_hook(db, 12, name, schema, enabled=name != "missed"))
    return ids


async def test_list_pages_through_the_hooks(db: Conn) -> None:
    ids = await seed_many(db)
    first = (await cli("hooks", "list", "--queue", 12, "--json")).json()
    assert len(first["items"]) == 40 and first["next"] == 2 and first["total"] == 49
    second = (await cli("hooks", "list", "--queue", 12, "--json", "--page", 2)).json()
    assert len(second["items"]) == 9 and second["next"] is None
    assert [h["id"] for h in first["items"] + second["items"]] == ids

    assert (await cli("hooks", "list", "--queue", 12, "--page", 2)).ok.endswith(
        "hooks 41-49 of 49; no next page\n"
    )
    text = (await cli("hooks", "list", "--queue", 12, "--size", 5)).ok.splitlines()
    assert text[0] == "queue 12 'queue 12' (offline queue, domain 1)"
    assert text[1].split() == ["ID", "EVENT", "SCHEMA", "SCHEMA", "ID", "STATE"]
    assert text[2].split() == ["1", "joined", "Schema", "0", "1", "enabled"]
    assert len(text) == 2 + 5 + 1 and text[-1] == "hooks 1-5 of 49; next page: --page 2"
    past = await cli("hooks", "list", "--queue", 12, "--page", 9)
    assert past.ok.endswith("page 9 is past the end: 49 hooks in all\n")


async def test_list_filters_by_event_and_state(db: Conn) -> None:
    await seed_many(db)

    async def listed(*args: object) -> list[dict[str, object]]:
        items: list[dict[str, object]] = (
            await cli("hooks", "list", "--queue", 12, "--json", "--size", 100, *args)
        ).json()["items"]
        return items

    missed = await listed("--event", "missed")
    assert len(missed) == 7 and all(h["event"] == "missed" and not h["enabled"] for h in missed)
    assert len(await listed("--disabled")) == 7
    enabled = await listed("--enabled")
    assert len(enabled) == 42 and all(h["enabled"] for h in enabled)
    assert await listed("--event", "leaving", "--disabled") == []
    item = (await listed("--event", "joined"))[0]
    assert set(item) == {
        "id", "queue_id", "event", "schema_id", "schema_name", "enabled", "created_at",
        "updated_at",
    }  # fmt: skip


async def test_list_shows_the_russian_labels(db: Conn) -> None:
    await seed_many(db)
    text = (await cli("hooks", "list", "--queue", 12, "--labels", "ru", "--size", 7)).ok
    for name in EVENTS:
        assert (LABELS_RU[name] in text) == fires(0, name)
    assert text.splitlines()[1].split()[:3] == ["ID", "EVENT", "LABEL"]
    items = (await cli("hooks", "list", "--queue", 12, "--labels", "ru", "--json")).json()["items"]
    assert all(h["label"] == LABELS_RU[h["event"]] for h in items)


async def test_list_of_an_empty_or_unknown_queue(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    assert (await cli("hooks", "list", "--queue", 12)).ok.endswith("no hooks\n")
    assert (await cli("hooks", "list", "--queue", 12, "--json")).json() == {
        "items": [], "next": None, "page": 1, "size": 40, "total": 0,
    }  # fmt: skip
    assert (await cli("hooks", "list", "--queue", 99)).error == "error: no queue 99"
    assert (
        "Invalid value for '--size'"
        in (await cli("hooks", "list", "--queue", 12, "--size", 0)).error
    )


# -- edit --------------------------------------------------------------------------------------
async def test_edit_replaces_the_schema_or_the_event(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    crm = await seed_schema(db, "https://crm.example/", name="CRM")
    alerts = await seed_schema(db, "https://alerts.example/", name="Alerts")
    hook = await seed_hook(db, 12, "leaving", crm)
    ran = await cli("hooks", "edit", hook, "--schema", "alert")
    assert f'on "leaving" call schema {alerts} \'Alerts\' (was: on "leaving" schema {crm}' in ran.ok
    assert await hook_rows(db) == [(hook, 12, "leaving", alerts, True)]
    await cli("hooks", "edit", hook, "--event", "joined", "--schema", crm)
    assert await hook_rows(db) == [(hook, 12, "joined", crm, True)]
    await cli("hooks", "edit", hook, "--event", "missed")
    assert await hook_rows(db) == [(hook, 12, "missed", crm, True)]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param((9, "--event", "joined"), "no hook 9", id="unknown-hook"),
        pytest.param((1,), "nothing to change: give --schema and/or --event", id="nothing"),
        pytest.param((1, "--event", "answered"), 'queue 12 (inbound queue) never fires '
                     '"answered"; it fires: joined,', id="event-never-fired"),
        pytest.param((1, "--schema", "3"), "schema 3 'Elsewhere' is in domain 2",
                     id="schema-of-another-domain"),
        pytest.param((1, "--schema", "nope"), "no schema named like 'nope'", id="unknown-schema"),
        pytest.param((1, "--event", "missed", "--schema", "Alerts"),
                     "hook 2 already calls schema 2 'Alerts' on \"missed\" of queue 12",
                     id="duplicate"),
    ],
)  # fmt: skip
async def test_edit_refused(db: Conn, args: tuple[object, ...], says: str) -> None:
    await seed_queue(db, 12, 1)
    crm = await seed_schema(db, "https://crm.example/", name="CRM")
    alerts = await seed_schema(db, "https://alerts.example/", name="Alerts")
    await seed_schema(db, "https://elsewhere.example/", name="Elsewhere", domain=2)
    await seed_hook(db, 12, "leaving", crm)
    await seed_hook(db, 12, "missed", alerts)
    before = await hook_rows(db)
    assert says in (await cli("hooks", "edit", *args)).error
    assert await hook_rows(db) == before


# -- enable / disable --------------------------------------------------------------------------
async def test_enable_and_disable_several_at_once(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    crm = await seed_schema(db, "https://crm.example/", name="CRM")
    ids = [await seed_hook(db, 12, name, crm) for name in ("joined", "missed", "leaving")]

    async def states() -> list[object]:
        return [row[-1] for row in await hook_rows(db)]

    assert (await cli("hooks", "disable", 1, 2)).ok == "disabled hooks 1, 2\n"
    assert await states() == [False, False, True]
    ran = await cli("hooks", "disable", 2, 3)
    assert ran.ok == "disabled hook 3\nhook 2 was already disabled\n"
    assert await states() == [False, False, False]
    assert (await cli("hooks", "enable", *ids)).ok == "enabled hooks 1, 2, 3\n"
    assert await states() == [True, True, True]

    # One unknown id: nothing changes, not even the hooks that exist.
    assert (await cli("hooks", "disable", 1, 8, 9)).error == "error: no hooks 8, 9; nothing changed"
    assert await states() == [True, True, True]
    assert "Missing argument 'IDS...'" in (await cli("hooks", "enable")).error


# -- delete ------------------------------------------------------------------------------------
async def seed_three(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    crm = await seed_schema(db, "https://crm.example/", name="CRM")
    for name in ("joined", "missed", "leaving"):
        await seed_hook(db, 12, name, crm)


async def remaining(db: Conn) -> list[object]:
    return [row[0] for row in await hook_rows(db)]


async def test_delete_several_with_yes(db: Conn) -> None:
    await seed_three(db)
    assert (await cli("hooks", "delete", 1, 3, "--yes")).ok == "deleted hooks 1, 3\n"
    assert await remaining(db) == [2]


async def test_delete_without_a_terminal_and_without_yes_is_refused(db: Conn) -> None:
    await seed_three(db)
    line = (await cli("hooks", "delete", 1, 2, stdin=b"y\n")).error
    assert line == "error: refusing to delete hooks 1, 2 without --yes: no terminal to ask on"
    assert await remaining(db) == [1, 2, 3]


async def test_delete_on_a_terminal_shows_how_many_and_which_and_asks(db: Conn) -> None:
    await seed_three(db)
    declined = await cli_on_terminal("hooks", "delete", 1, 2, typed="n\n")
    lines = declined.out.splitlines()
    assert lines[0] == "2 hooks selected:"
    assert lines[1].split() == ["ID", "QUEUE", "EVENT", "SCHEMA", "SCHEMA", "ID", "STATE"]
    assert lines[2].split() == ["1", "12", "joined", "CRM", "1", "enabled"]
    assert lines[3].split() == ["2", "12", "missed", "CRM", "1", "enabled"]
    assert lines[4].startswith("Delete these 2 hooks? [y/N]")
    assert declined.error == "error: nothing deleted"
    assert await remaining(db) == [1, 2, 3]

    accepted = await cli_on_terminal("hooks", "delete", 1, 2, typed="y\n")
    assert accepted.code == 0 and accepted.out.endswith("deleted hooks 1, 2\n")
    assert await remaining(db) == [3]


async def test_delete_of_an_unknown_hook_deletes_nothing(db: Conn) -> None:
    await seed_three(db)
    assert (
        await cli("hooks", "delete", 1, 7, "--yes")
    ).error == "error: no hook 7; nothing changed"
    assert await remaining(db) == [1, 2, 3]


# -- what every command shares -----------------------------------------------------------------
async def test_a_refusal_of_the_database_itself_is_shown_in_its_words(db: Conn) -> None:
    # A rule the commands know nothing of (say, a site's own): the database has the last word.
    await db.execute(
        "ALTER TABLE queue_hooks.schemas ADD CONSTRAINT site_https_only CHECK (url ~ '^https:')"
    )
    try:
        ran = await cli(
            "schemas", "add", "--domain", 1, "--name", "X", "--url", "http://x.example/"
        )
        assert ran.error == (
            'error: database refused: new row for relation "schemas" violates check constraint '
            '"site_https_only"'
        )  # and not the failing row, which holds the secret
    finally:
        await db.execute("ALTER TABLE queue_hooks.schemas DROP CONSTRAINT site_https_only")
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.schemas") == 0


async def test_an_unreachable_or_unmigrated_database_is_one_line(db: Conn, database: str) -> None:
    down = {"QUEUE_HOOKS_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/queue_hooks"}
    ran = await cli("hooks", "list", "--queue", 12, env=down)
    assert ran.code == 3 and ran.error.startswith("error: cannot reach a service:")

    parts = urlsplit(database)
    other = urlunsplit(parts._replace(path="/postgres"))  # exists, never migrated
    ran = await cli("queues", "list", env={"QUEUE_HOOKS_DATABASE_URL": other})
    assert ran.error == "error: the database has no queue_hooks tables: run `queue-hooks migrate`"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:hunter2@127.0.0.1:notaport/db",
        "postgresql://u:hunter2@127.0.0.1:70000/db",
        "postgresql://u:hunter2@h1:5432,h2:x/db",
        "postgresql://u:hunter2@/db?host=127.0.0.1&port=abc",
        "mysql://u:hunter2@127.0.0.1/db",
    ],
)
async def test_a_database_url_that_is_not_one_is_a_bad_setting(url: str) -> None:
    ran = await cli("hooks", "list", "--queue", 12, env={"QUEUE_HOOKS_DATABASE_URL": url})
    assert ran.code == 2 and ran.error.startswith("error: bad setting: QUEUE_HOOKS_DATABASE_URL")
    assert "hunter2" not in ran.err


async def test_a_dotenv_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"QUEUE_HOOKS_LOG_LEVEL=\xff\xfe\n")
    ran = await cli("queues", "list", cwd=tmp_path)
    assert ran.code == 2 and ".env" in ran.error


async def test_a_broker_that_refuses_the_vhost_is_one_line(db: Conn) -> None:
    url = os.environ["QUEUE_HOOKS_AMQP_URL"].rstrip("/") + "/no-such-vhost"
    for args in (("dlq", "list"), ("publish", "--queue", 12, "--event", "joined")):
        ran = await cli(*args, env={"QUEUE_HOOKS_AMQP_URL": url})
        assert ran.error.startswith("error: "), args


@pytest.mark.parametrize(
    "args",
    [
        ("publish", "--queue", 1, "--event", "joined", "--set", "destination=\udcff"),
        ("queues", "add", "--id", 50, "--domain", 1, "--type", 1, "--name", "q\udcff"),
        ("tokens", "add", "--domain", 1, "--name", "\udcff"),
    ],
)
async def test_an_argument_that_is_not_utf8_is_named_in_one_line(
    db: Conn, args: tuple[object, ...]
) -> None:
    # A byte like 0xff from a script in another encoding: a traceback from publish (orjson),
    # the database's "surrogates not allowed" from the others.
    ran = await cli(*args)
    assert ran.code == 2 and "is not UTF-8" in ran.error, ran.error
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.queues") == 0
