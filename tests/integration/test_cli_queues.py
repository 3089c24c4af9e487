"""`queue-hooks queues ...` and the SQL fixtures an admin copies, against the real database."""

from __future__ import annotations

import pytest

from schemas.queue_types import QUEUE_TYPES, events_fired
from tests.support.cli import cli
from tests.support.helpers import Conn, seed_queue, seed_schema

# Each type as an admin might write it: its id, or its name in any case, with - or _.
AS_TYPED = ["0", "inbound queue", "Outbound-IVR", "preview_dialer", "4", "PREDICTIVE dialer",
            "inbound chat queue", "7"]  # fmt: skip


async def test_a_queue_of_each_type_with_its_variables(db: Conn) -> None:
    for type_id, typed in enumerate(AS_TYPED):
        ran = await cli(
            "queues", "add", "--id", 100 + type_id, "--domain", 1, "--name", f"Q{type_id}",
            "--type", typed, "--var", "brand=Acme", "--var", f"line=l{type_id}", "--var", "x=a=b",
        )  # fmt: skip
        kind = QUEUE_TYPES[type_id]
        assert ran.ok == (
            f"added queue {100 + type_id} 'Q{type_id}' ({kind}, domain 1); "
            f"it fires: {', '.join(events_fired(type_id))}\n"
        )
    rows = await db.fetch("SELECT id, domain_id, name, type, variables FROM queue_hooks.queues")
    assert sorted(tuple(r) for r in rows) == [
        (100 + t, 1, f"Q{t}", t, {"brand": "Acme", "line": f"l{t}", "x": "a=b"}) for t in range(8)
    ]
    listed = (await cli("queues", "list", "--json")).json()
    assert [q["type_name"] for q in listed["items"]] == list(QUEUE_TYPES.values())
    assert listed["items"][1] == {
        "id": 101, "domain_id": 1, "name": "Q1", "type": 1, "type_name": "inbound queue",
        "variables": {"brand": "Acme", "line": "l1", "x": "a=b"}, "hooks": 0,
    }  # fmt: skip

    # Seeded this way, each queue takes the hooks of exactly the events its type fires.
    schema = await seed_schema(db, "https://crm.example/", name="CRM")
    for type_id in range(8):
        fired = events_fired(type_id)
        added = await cli(
            "hooks", "add", "--queue", 100 + type_id, "--event", fired[-1], "--schema", schema
        )
        assert added.ok.startswith(f'added hook {type_id + 1}: on "{fired[-1]}"')
    text = (await cli("queues", "list", "--domain", 1)).ok.splitlines()
    assert text[0].split() == ["ID", "DOMAIN", "NAME", "TYPE", "VARIABLES", "HOOKS"]
    assert text[2].split() == ["101", "1", "Q1", "1", "inbound", "queue", "brand=Acme,",
                               "line=l1,", "x=a=b", "1"]  # fmt: skip
    assert text[-1] == "queues 1-8 of 8; no next page"


async def test_queues_list_filters_and_pages(db: Conn) -> None:
    for n in range(5):
        added = await cli(
            "queues", "add", "--id", n + 1, "--domain", 1 + n % 2, "--name", f"Q{n}", "--type", 1
        )
        assert added.ok
    second = (await cli("queues", "list", "--json", "--domain", 2)).json()
    assert [q["id"] for q in second["items"]] == [2, 4]
    page = (await cli("queues", "list", "--json", "--size", 2, "--page", 3)).json()
    assert [q["id"] for q in page["items"]] == [5] and page["next"] is None
    assert (await cli("queues", "list", "--domain", 3)).ok == "no queues\n"


async def test_a_name_with_control_characters_stays_on_its_row_and_off_the_terminal(
    db: Conn,
) -> None:
    # Names come from SQL too: a line break broke the table, an escape sequence reached the
    # admin's terminal (colours, a cleared screen, a retitled window) as it was.
    await seed_queue(db, 7, 1)
    await db.execute(
        "UPDATE queue_hooks.queues SET name = $1 WHERE id = 7", "Sales\nFake row\x1b[2J\u202e"
    )
    await seed_schema(db, "https://crm.example/", name="CRM\tnew")
    for listing in (("queues", "list"), ("schemas", "list"), ("hooks", "list", "--queue", 7)):
        out = (await cli(*listing)).ok
        assert not any(c in out for c in "\x1b\t\u202e"), listing
    lines = (await cli("queues", "list")).ok.splitlines()
    assert len(lines) == 3 and "Sales\\nFake row\\x1b[2J\\u202e" in lines[1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(("--type", "8"), "unknown queue type '8'; the types are: 0 offline queue, "
                     "1 inbound queue, 2 outbound IVR", id="type-8"),
        pytest.param(("--type", "inbound"), "unknown queue type 'inbound'", id="type-part"),
        pytest.param(("--var", "novalue"), "--var 'novalue' is not NAME=VALUE", id="var"),
        pytest.param(("--var", "=x"), "--var '=x' is not NAME=VALUE", id="var-no-name"),
        pytest.param(("--id", 12), 'database refused: duplicate key value violates unique '
                     'constraint "queues_pkey" (Key (id)=(12) already exists.)', id="duplicate"),
        pytest.param(("--id", -1), "Invalid value for '--id'", id="negative-id"),
    ],
)  # fmt: skip
async def test_queues_add_refused(db: Conn, args: tuple[object, ...], says: str) -> None:
    await cli("queues", "add", "--id", 12, "--domain", 1, "--name", "Q", "--type", 1)
    options: dict[object, object] = {"--id": 13, "--domain": 1, "--name": "N", "--type": 1}
    options.update(zip(args[::2], args[1::2], strict=True))
    argv = [x for pair in options.items() for x in pair]
    assert says in (await cli("queues", "add", *argv)).error
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.queues") == 1


async def test_the_example_fixture_seeds_a_real_queue_and_loads_again(db: Conn) -> None:
    for _ in range(2):  # safe to load again
        ran = await cli("migrate", "--fixtures", "example-real-queue")
        assert ran.ok.endswith("example-real-queue.sql\n")
    items = (await cli("hooks", "list", "--queue", 12, "--json")).json()["items"]
    # (in whatever order the database joined them: the ids are not the file's order)
    assert sorted((h["event"], h["schema_name"], h["enabled"]) for h in items) == [
        ("joined", "CRM", True),
        ("leaving", "CRM", True),
        ("missed", "CRM", False),
        ("missed", "Supervisor alerts", True),
    ]
    schemas = (await cli("schemas", "list", "--json")).json()["items"]
    assert [(s["name"], s["secret"], s["headers"]) for s in schemas] == [
        ("CRM", "none", ["Authorization"]),
        ("Supervisor alerts", "none", []),
    ]
    # As its comments say: then give a schema a secret from the command line.
    assert "secret: whsec_" in (await cli("schemas", "rotate-secret", schemas[0]["id"])).ok


async def test_the_demo_fixture_still_loads(db: Conn) -> None:
    await cli("migrate", "--fixtures", "demo")
    listed = (await cli("queues", "list", "--json")).json()
    assert listed["total"] == 8 and sum(q["hooks"] for q in listed["items"]) == sum(
        len(events_fired(t)) for t in range(8)
    )
