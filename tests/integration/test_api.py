"""`queue-hooks api` against the real PostgreSQL: every call of contract §8, every rule of §9."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.conftest import MakeToken, client, is_error
from tests.support.fixtures import StartWorker
from tests.support.helpers import (
    Conn,
    Platform,
    delivered,
    seed_hook,
    seed_queue,
    seed_schema,
    until,
)  # fmt: skip
from tests.support.receiver import Receiver
from worker.store import admin
from worker.store.db import connect

HOOKS = "/call_center/queues/{}/hooks"


async def seed(db: Conn) -> dict[str, int]:
    """Queue 12 (inbound, domain 1) with 5 hooks; queue 13 (domain 1); queue 20 of domain 2."""
    await seed_queue(db, 12, 1)
    await seed_queue(db, 13, 6)
    await seed_queue(db, 20, 1, domain=2)
    crm = await seed_schema(db, "https://crm.example/h", name="CRM")
    alerts = await seed_schema(db, "https://alerts.example/h", name="Alerts")
    other = await seed_schema(db, "https://other.example/h", name="Other", domain=2)
    for event in ("joined", "leaving", "missed"):
        await seed_hook(db, 12, event, crm)
    await seed_hook(db, 12, "offering", alerts)
    await seed_hook(db, 12, "bridged", alerts, enabled=False)
    await seed_hook(db, 20, "joined", other)
    return {"crm": crm, "alerts": alerts, "other": other}


def ids(body: dict[str, Any]) -> list[int]:
    return [h["id"] for h in body["items"]]


# -- tokens: who is asking ---------------------------------------------------------------------
async def test_no_token_bad_token_revoked_token_are_401(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    await seed(db)
    token_id, token = await make_token(admin_=True)
    for sent in (None, "qh_not-a-token", ""):
        async with client(api_url, sent) as c:
            detail = is_error(await c.get(HOOKS.format(12)), 401)
            assert "qh_" not in detail
    async with client(api_url, token, bearer=True) as c:
        assert (await c.get(HOOKS.format(12))).status_code == 200
        async with admin.session(db_url(db)) as conn:
            assert await admin.revoke_token(conn, token_id)
        is_error(await c.get(HOOKS.format(12)), 401)


def db_url(db: Conn) -> str:
    import os

    return os.environ["QUEUE_HOOKS_DATABASE_URL"]


async def test_another_domain_is_404_never_403_or_200(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    await seed(db)
    _id, token = await make_token(domain=2, admin_=True)
    async with client(api_url, token) as c:
        calls = [
            c.get(HOOKS.format(12)), c.get(HOOKS.format(12) + "/1"),
            c.post(HOOKS.format(12), json={"event": "joined", "schema": {"id": "3"}}),
            c.put(HOOKS.format(12) + "/1", json={"event": "joined", "schema": {"id": 3}}),
            c.patch(HOOKS.format(12) + "/1", json={"enabled": False}),
            c.delete(HOOKS.format(12) + "/1"), c.delete(HOOKS.format(12), params={"id": [1]}),
            c.get("/call_center/queues/12"), c.patch("/schemas/1", json={"name": "x"}),
            c.delete("/schemas/1"), c.post("/schemas/1/rotate-secret"),
        ]  # fmt: skip
        for answer in await asyncio.gather(*calls):
            is_error(answer, 404)
        queues = (await c.get("/call_center/queues")).json()
        assert [q["id"] for q in queues["items"]] == [20]
        schemas = (await c.get("/schemas")).json()
        assert [s["name"] for s in schemas["items"]] == ["Other"]
        # Its own queue's hook may not call domain 1's schema: refused like a missing one.
        theirs = {"event": "leaving", "schema": {"id": "1"}}
        detail = is_error(await c.post(HOOKS.format(20), json=theirs), 400)
        assert detail == "no schema 1 in this domain"
        assert "domain 1" not in detail
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.hooks") == 6


async def test_grants_read_edit_and_none(db: Conn, api_url: str, make_token: MakeToken) -> None:
    s = await seed(db)
    _r, reader = await make_token(grants={12: "read"})
    _e, editor = await make_token(grants={12: "edit"}, name="editor")
    _n, nobody = await make_token()
    new = {"event": "processing", "schema": {"id": str(s["crm"])}}
    async with client(api_url, reader) as c:
        assert len((await c.get(HOOKS.format(12))).json()["items"]) == 5
        assert (await c.get(HOOKS.format(12) + "/1")).status_code == 200
        is_error(await c.post(HOOKS.format(12), json=new), 403)
        is_error(await c.patch(HOOKS.format(12) + "/1", json={"enabled": False}), 403)
        is_error(await c.delete(HOOKS.format(12) + "/1"), 403)
        is_error(await c.get(HOOKS.format(13)), 403)  # same domain, no grant
        assert [q["id"] for q in (await c.get("/call_center/queues")).json()["items"]] == [12]
        assert (await c.get("/schemas")).status_code == 200
        is_error(await c.post("/schemas", json={"name": "N", "url": "https://n.example/"}), 403)
        is_error(await c.patch(f"/schemas/{s['crm']}", json={"name": "N"}), 403)
    async with client(api_url, editor) as c:
        made = await c.post(HOOKS.format(12), json=new)
        assert made.status_code == 200, made.text
        assert made.json()["updated_by"] == {"id": str(_e), "name": "editor"}
        is_error(await c.post(HOOKS.format(13), json=new), 403)
    async with client(api_url, nobody) as c:
        is_error(await c.get(HOOKS.format(12)), 403)
        is_error(await c.get("/schemas"), 403)
        assert (await c.get("/call_center/queues")).json() == {"items": [], "next": False}


# -- search ------------------------------------------------------------------------------------
async def test_search_paging_next_is_exact(db: Conn, api_url: str, make_token: MakeToken) -> None:
    await seed(db)
    _id, token = await make_token(grants={12: "read"})
    async with client(api_url, token) as c:
        pages = [(await c.get(HOOKS.format(12), params={"page": p, "size": 2})).json()
                 for p in (1, 2, 3, 4)]  # fmt: skip
        assert [ids(p) for p in pages] == [[1, 2], [3, 4], [5], []]
        assert [p["next"] for p in pages] == [True, True, False, False]
        exact = (await c.get(HOOKS.format(12), params={"size": 5})).json()
        assert len(exact["items"]) == 5 and exact["next"] is False
        assert (await c.get(HOOKS.format(12), params={"size": 4})).json()["next"] is True
        default = (await c.get(HOOKS.format(12))).json()
        assert ids(default) == [1, 2, 3, 4, 5] and default["next"] is False
        one = default["items"][0]
        assert one == {
            "id": 1, "event": "joined", "schema": {"id": "1", "name": "CRM"}, "enabled": True,
            "queue_id": 12, "updated_at": one["updated_at"], "updated_by": None,
        }  # fmt: skip
        for bad in ({"size": 0}, {"size": 1001}, {"page": 0}, {"sort": "+url"}, {"page": "x"},
                    {"enabled": "maybe"}, {"event": "nope"}, {"id": "x"}):  # fmt: skip
            is_error(await c.get(HOOKS.format(12), params=bad), 400)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"q": "LEAV"}, [2], id="q-event-any-case"),
        pytest.param({"q": "alert"}, [4, 5], id="q-schema-name"),
        pytest.param({"q": "j*d"}, [1], id="q-star"),
        pytest.param({"q": "%"}, [], id="q-percent-is-literal"),
        pytest.param({"sort": "-id"}, [5, 4, 3, 2, 1], id="sort-desc"),
        pytest.param({"sort": "+event"}, [5, 1, 2, 3, 4], id="sort-event"),
        pytest.param({"sort": "schema"}, [4, 5, 1, 2, 3], id="sort-schema"),
        pytest.param({"sort": "-enabled"}, [4, 3, 2, 1, 5], id="sort-enabled"),
        pytest.param({"id": [2, 4, 99]}, [2, 4], id="ids"),
        pytest.param({"schema_id": ["2"]}, [4, 5], id="schema-id"),
        pytest.param({"event": ["joined", "missed"]}, [1, 3], id="events"),
        pytest.param({"enabled": "false"}, [5], id="disabled"),
        pytest.param({"fields": ["id", "event"], "color": "red"}, [1, 2, 3, 4, 5], id="ignored"),
    ],
)
async def test_search_filters_and_sorts(
    db: Conn, api_url: str, make_token: MakeToken, params: dict[str, Any], expected: list[int]
) -> None:
    await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        found = await c.get(HOOKS.format(12), params=params)
        assert found.status_code == 200, found.text
        assert ids(found.json()) == expected
        assert all(len(h) == 7 for h in found.json()["items"])  # every field, whatever `fields`


async def test_searches_fold_the_case_of_every_alphabet(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    """The test database is made with the C locale (deploy/local/services.sh), which folds
    ASCII only: each search names a collation that folds Cyrillic too (0005)."""
    await db.execute(
        "INSERT INTO queue_hooks.queues (id, domain_id, name, type) VALUES (30, 1, 'Продажи', 1)"
    )
    crm = await seed_schema(db, "https://crm.example/h", name="Шлюз отдела")
    hook = await seed_hook(db, 30, "leaving", crm)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        queues = await c.get("/call_center/queues", params={"q": "продажи"})
        assert ids(queues.json()) == [30], queues.text
        hooks = await c.get(HOOKS.format(30), params={"q": "ШЛЮЗ ОТД*"})
        assert ids(hooks.json()) == [hook], hooks.text
        schemas = (await c.get("/schemas", params={"q": "шлюз"})).json()["items"]
        assert [s["name"] for s in schemas] == ["Шлюз отдела"]
    found = await admin.schemas(db, "ОТДЕЛА", None)  # the commands' search
    assert [r["name"] for r in found] == ["Шлюз отдела"]


# -- create, read, update, patch, delete --------------------------------------------------------
async def test_create_with_the_schema_id_as_string_and_as_number(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    s = await seed(db)
    token_id, token = await make_token(admin_=True, name="admin one")
    async with client(api_url, token) as c:
        a = await c.post(HOOKS.format(12), json={"event": "processing", "schema": {"id": "1"}})
        b = await c.post(HOOKS.format(12), json={"event": "processing", "schema": {"id": 2},
                                                 "enabled": False, "queue_id": "12"})  # fmt: skip
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert a.json()["schema"] == {"id": "1", "name": "CRM"} and a.json()["enabled"] is True
    assert b.json()["schema"] == {"id": str(s["alerts"]), "name": "Alerts"}
    assert b.json()["enabled"] is False
    assert a.json()["updated_by"] == {"id": str(token_id), "name": "admin one"}
    row = await db.fetchrow("SELECT * FROM queue_hooks.hooks WHERE id = $1", b.json()["id"])
    assert row is not None and row["updated_by"] == token_id and not row["enabled"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param({"event": "answered", "schema": {"id": "1"}}, 'queue 12 (inbound queue) '
                     'never fires "answered"; it fires: joined, offering, bridged, missed, '
                     "leaving, processing", id="not-fired"),
        pytest.param({"event": "joined", "schema": {"id": "1"}}, "hook 1 already calls schema 1",
                     id="duplicate"),
        pytest.param({"event": "processing", "schema": {"id": "3"}}, "no schema 3 in this domain",
                     id="other-domain-schema"),
        pytest.param({"event": "processing", "schema": {"id": "99"}},
                     "no schema 99 in this domain", id="no-schema"),
        pytest.param({"event": "nope", "schema": {"id": "1"}}, "event", id="unknown-event"),
        pytest.param({"event": "joined"}, "schema", id="no-schema-given"),
        pytest.param({"event": "joined", "schema": {"id": "1x"}}, "schema.id", id="bad-id"),
        pytest.param({"event": "joined", "schema": {"id": "99999999999999999999"}}, "schema.id",
                     id="id-out-of-range"),
        pytest.param({"event": 5, "schema": {"id": 1}}, "event", id="wrong-type"),
        pytest.param({"event": "joined", "schema": {"id": 1}, "enabled": "sure"}, "enabled",
                     id="bad-bool"),
    ],
)  # fmt: skip
async def test_create_refusals_are_400_in_words(
    db: Conn, api_url: str, make_token: MakeToken, body: dict[str, Any], says: str
) -> None:
    await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        assert says in is_error(await c.post(HOOKS.format(12), json=body), 400)
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.hooks") == 6


async def test_read_update_patch_delete(db: Conn, api_url: str, make_token: MakeToken) -> None:
    s = await seed(db)
    token_id, token = await make_token(grants={12: "edit"}, name="ed")
    one = HOOKS.format(12) + "/2"
    async with client(api_url, token) as c:
        read = (await c.get(one)).json()
        assert read["event"] == "leaving" and read["updated_by"] is None
        put = await c.put(one, json={"event": "processing", "schema": {"id": s["alerts"]},
                                     "enabled": False})  # fmt: skip
        assert put.status_code == 200, put.text
        assert (put.json()["event"], put.json()["schema"]["id"], put.json()["enabled"]) == (
            "processing", str(s["alerts"]), False)  # fmt: skip
        assert put.json()["updated_by"] == {"id": str(token_id), "name": "ed"}
        assert put.json()["updated_at"] > read["updated_at"]
        patched = (await c.patch(one, json={"enabled": True})).json()
        assert patched["enabled"] is True and patched["event"] == "processing"
        # `fields` restricts the change to the keys it names.
        restricted = {"event": "leaving", "enabled": False, "schema": {"id": "1"},
                      "fields": ["schema.id"]}  # fmt: skip
        only = await c.patch(one, json=restricted)
        assert (only.json()["event"], only.json()["schema"]["id"], only.json()["enabled"]) == (
            "processing", "1", True)  # fmt: skip
        is_error(await c.patch(one, json={"event": "answered"}), 400)
        is_error(await c.get(HOOKS.format(13) + "/2"), 403)  # no right on 13: not said it's there
        is_error(await c.get(HOOKS.format(12) + "/6"), 404)  # queue 20's hook, not 12's
        is_error(await c.get(HOOKS.format(12) + "/999"), 404)
        deleted = await c.delete(one)
        assert deleted.status_code == 200 and deleted.json()["id"] == 2
        is_error(await c.get(one), 404)
        is_error(await c.delete(one), 404)
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.hooks WHERE id = 2") == 0


async def test_delete_several_is_all_or_nothing(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        detail = is_error(await c.delete(HOOKS.format(12), params={"id": [1, 2, 6, 99]}), 404)
        assert "6, 99" in detail and "none deleted" in detail
        assert await db.fetchval("SELECT count(*) FROM queue_hooks.hooks") == 6
        is_error(await c.delete(HOOKS.format(12)), 400)
        gone = await c.delete(HOOKS.format(12), params={"id": [1, 3]})
        assert gone.status_code == 200 and ids(gone.json()) == [1, 3]
    left = await db.fetch("SELECT id FROM queue_hooks.hooks ORDER BY id")
    assert [r["id"] for r in left] == [2, 4, 5, 6]


async def _blocked_on_a_hook_lock(probe: Conn) -> bool:
    waiting: int = await probe.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query ILIKE '%DELETE FROM queue_hooks.hooks%'"
    )
    return waiting > 0


@pytest.mark.parametrize("several", [True, False], ids=["delete-several", "delete-one"])
async def test_a_delete_that_loses_a_race_deletes_nothing_and_says_so(
    db: Conn, api_url: str, make_token: MakeToken, several: bool
) -> None:
    """Hook 2 is deleted by someone else while the API's delete waits for its row: the API
    read it before that commit, but must not answer that it deleted it (nor delete hook 1
    alone, for a delete of several: all or nothing)."""
    await seed(db)
    _id, token = await make_token(admin_=True)
    other = await connect(db_url(db))
    probe = await connect(db_url(db))
    try:
        meanwhile = other.transaction()
        await meanwhile.start()
        await other.execute("DELETE FROM queue_hooks.hooks WHERE id = 2")
        async with client(api_url, token) as c:
            call = (c.delete(HOOKS.format(12), params={"id": [1, 2]}) if several
                    else c.delete(HOOKS.format(12) + "/2"))  # fmt: skip
            answer = asyncio.ensure_future(call)
            await until(lambda: _blocked_on_a_hook_lock(probe))
            await meanwhile.commit()
            detail = is_error(await answer, 404)
        assert "2" in detail
    finally:
        await other.close()
        await probe.close()
    left = await db.fetch("SELECT id FROM queue_hooks.hooks WHERE queue_id = 12 ORDER BY id")
    assert [r["id"] for r in left] == [1, 3, 4, 5]


async def _blocked_on_a_hook_update(probe: Conn) -> bool:
    waiting: int = await probe.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query ILIKE '%queue_hooks.hooks%' AND query NOT ILIKE '%pg_stat_activity%'"
    )
    return waiting > 0


async def test_an_edit_does_not_undo_a_switch_committed_while_it_ran(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    """The page's edit sends only the schema, so that a switch flipped meanwhile is kept
    (docs/admin-page.md): the switch off commits while the edit's PATCH waits for the row.
    The PATCH must write the schema onto the hook as it now is, not on the copy it read."""
    s = await seed(db)
    _id, token = await make_token(admin_=True)
    other, probe = await connect(db_url(db)), await connect(db_url(db))
    try:
        meanwhile = other.transaction()
        await meanwhile.start()
        await other.execute("UPDATE queue_hooks.hooks SET enabled = false WHERE id = 2")
        async with client(api_url, token) as c:
            edit = {"schema": {"id": str(s["alerts"])}}
            answer = asyncio.ensure_future(c.patch(HOOKS.format(12) + "/2", json=edit))
            await until(lambda: _blocked_on_a_hook_update(probe))
            await meanwhile.commit()
            patched = await answer
        assert patched.status_code == 200, patched.text
        assert (patched.json()["schema"]["id"], patched.json()["enabled"]) == (
            str(s["alerts"]), False)  # fmt: skip
    finally:
        await other.close()
        await probe.close()
    row = await db.fetchrow("SELECT schema_id, enabled FROM queue_hooks.hooks WHERE id = 2")
    assert row is not None and (row["schema_id"], row["enabled"]) == (s["alerts"], False)


# -- lookups -----------------------------------------------------------------------------------
async def test_queues_schemas_and_event_labels(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        queues = (await c.get("/call_center/queues", params={"size": 1})).json()
        assert queues["next"] is True
        assert queues["items"] == [{
            "id": 12, "name": "queue 12", "type": 1, "type_name": "inbound queue",
            "events": ["joined", "offering", "bridged", "missed", "leaving", "processing"],
            "can_edit": True,
        }]  # fmt: skip
        chat = (await c.get("/call_center/queues/13")).json()
        assert "active" in chat["events"]
        assert ids((await c.get("/call_center/queues", params={"q": "13"})).json()) == [13]
        is_error(await c.get("/call_center/queues/99"), 404)
        found = (await c.get("/schemas", params={"q": "cr"})).json()
        assert found == {"items": [{"id": "1", "name": "CRM", "url": "https://crm.example/h",
                                    "signed": False, "timeout_ms": 5000, "headers": [],
                                    "max_per_second": None}],
                         "next": False}  # fmt: skip
        labels = (await c.get("/events")).json()["items"]
        assert [e["event"] for e in labels][:2] == ["joined", "answered"] and len(labels) == 8
        assert labels[0]["ru"] == "Абонент вошел в очередь" and labels[0]["en"]


async def test_schema_admin(db: Conn, api_url: str, make_token: MakeToken) -> None:
    s = await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        made = await c.post("/schemas", json={"name": "New", "url": "https://new.example/h",
                                              "headers": {"X-Key": "k"}})  # fmt: skip
        assert made.status_code == 200, made.text
        secret = made.json()["secret"]
        assert secret.startswith("whsec_") and made.json()["headers"] == ["X-Key"]
        listed = (await c.get("/schemas", params={"q": "new"})).text
        assert secret not in listed and '"k"' not in listed
        new_id = made.json()["id"]
        patched = await c.patch(f"/schemas/{new_id}", json={"name": "Renamed", "timeout_ms": 500})
        assert patched.json()["name"] == "Renamed" and patched.json()["timeout_ms"] == 500
        assert "secret" not in patched.json()
        rotated = (await c.post(f"/schemas/{new_id}/rotate-secret", json={"grace": "1h"})).json()
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
        assert rotated["previous_secret_until"] is not None
        for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "ftp://x/"):
            is_error(await c.post("/schemas", json={"name": "Bad", "url": url}), 400)
            is_error(await c.patch(f"/schemas/{new_id}", json={"url": url}), 400)
        # The database's own refusal (its unique key), in its words (contract §8).
        dup = is_error(await c.post("/schemas", json={"name": "CRM", "url": "https://d.example/"}),
                       400)  # fmt: skip
        assert 'duplicate key value violates unique constraint "schemas_domain_name_key"' in dup
        is_error(await c.post("/schemas", json={"name": "H", "url": "https://h.example/",
                                                "headers": {"webhook-id": "x"}}), 400)  # fmt: skip
        detail = is_error(await c.delete(f"/schemas/{s['crm']}"), 409)
        assert "used by hooks 1, 2, 3" in detail
        assert (await c.delete(f"/schemas/{new_id}")).json()["name"] == "Renamed"
        is_error(await c.delete(f"/schemas/{new_id}"), 404)


async def test_a_password_in_a_schema_url_is_never_shown(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    # Anyone who may read a queue may search schemas (contract §9), "never a secret" (§8).
    await seed(db)
    await db.execute(
        "UPDATE queue_hooks.schemas SET url = 'https://bot:s3cr%40t@crm.example/h?x=1'"
        " WHERE name = 'CRM'"
    )
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        found = await c.get("/schemas", params={"q": "crm"})
        assert found.json()["items"][0]["url"] == "https://bot:***@crm.example/h?x=1"
        assert "s3cr" not in found.text


async def test_schema_rate_limit_set_changed_kept_and_dropped(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    """`max_per_second` (issue 13) through the API, by the rule `schemas add / edit` apply."""
    await seed(db)
    _id, token = await make_token(admin_=True)

    async def stored(schema_id: str) -> float | None:
        rate: float | None = await db.fetchval(
            "SELECT max_per_second FROM queue_hooks.schemas WHERE id = $1", int(schema_id)
        )
        return rate

    async with client(api_url, token) as c:
        made = await c.post("/schemas", json={"name": "Slow", "url": "https://slow.example/",
                                              "max_per_second": 12.5})  # fmt: skip
        assert made.status_code == 200, made.text
        new_id = made.json()["id"]
        assert made.json()["max_per_second"] == 12.5 and await stored(new_id) == 12.5
        listed = (await c.get("/schemas", params={"q": "slow"})).json()["items"]
        assert [s["max_per_second"] for s in listed] == [12.5]
        patched = await c.patch(f"/schemas/{new_id}", json={"max_per_second": 40})
        assert patched.json()["max_per_second"] == 40 and await stored(new_id) == 40
        kept = await c.patch(f"/schemas/{new_id}", json={"name": "Slower"})
        assert kept.json()["max_per_second"] == 40 and await stored(new_id) == 40
        for bad in (0, -1, 1e10, "fast", "12", True):
            is_error(await c.patch(f"/schemas/{new_id}", json={"max_per_second": bad}), 400)
            body = {"name": f"Bad {bad}", "url": "https://b.example/", "max_per_second": bad}
            is_error(await c.post("/schemas", json=body), 400)
        assert await stored(new_id) == 40
        dropped = await c.patch(f"/schemas/{new_id}", json={"max_per_second": None})
        assert dropped.json()["max_per_second"] is None and await stored(new_id) is None
        plain = await c.post("/schemas", json={"name": "Free", "url": "https://free.example/"})
        assert plain.json()["max_per_second"] is None
    names = await db.fetch("SELECT name FROM queue_hooks.schemas WHERE name LIKE 'Bad%'")
    assert names == []


# -- errors: always the §8 object, never a 5xx -------------------------------------------------
async def test_malformed_requests_are_4xx_error_objects(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        is_error(await c.get("/nowhere"), 404)
        is_error(await c.get("/call_center/queues/12/hooks/1/more"), 404)
        is_error(await c.put(HOOKS.format(12)), 405)
        is_error(await c.post("/events"), 405)
        bad = {"content": b"{not json", "headers": {"content-type": "application/json"}}
        is_error(await c.post(HOOKS.format(12), **bad), 400)  # type: ignore[arg-type]
        is_error(await c.post(HOOKS.format(12), content=b"[1, 2]"), 400)
        is_error(await c.post(HOOKS.format(12), content=b"\xff\xfe"), 400)
        is_error(await c.get(HOOKS.format("99999999999999999999")), 400)
        is_error(await c.get(HOOKS.format("-1")), 400)
        is_error(await c.get(HOOKS.format("abc")), 400)
        # Digits to str.isdigit() that int() refuses (superscript two): 400, not a 500.
        is_error(await c.get(HOOKS.format("\u00b2")), 400)
        is_error(await c.get("/call_center/queues/\u00b2"), 400)
        is_error(await c.get(HOOKS.format(12) + "/1.5"), 400)
        huge = b'{"event": "joined", "schema": {"id": 1}, "x": "' + b"a" * 2_000_000 + b'"}'
        is_error(await c.post(HOOKS.format(12), content=huge), 413)

        async def chunks() -> Any:
            for _ in range(40):
                yield b"a" * 65536

        is_error(await c.post(HOOKS.format(12), content=chunks()), 413)
    # And a curl -d without a JSON content type is still read as JSON.
    async with httpx.AsyncClient(base_url=api_url, headers={"X-Webitel-Access": token}) as c:
        form = {"content-type": "application/x-www-form-urlencoded"}
        made = await c.post(HOOKS.format(12), headers=form,
                            content=b'{"event": "processing", "schema": {"id": "1"}}')  # fmt: skip
        assert made.status_code == 200, made.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param(HOOKS.format(12), {"enabled": "yes"}, id="enabled-yes"),
        pytest.param(HOOKS.format(12), {"enabled": "on"}, id="enabled-on"),
        pytest.param(HOOKS.format(12), {"enabled": "1"}, id="enabled-1"),
        pytest.param(HOOKS.format(12), {"enabled": "n"}, id="enabled-n"),
        pytest.param(HOOKS.format(12), {"id": "3.0"}, id="id-with-fraction"),
        pytest.param(HOOKS.format(12), {"id": "+3"}, id="id-with-sign"),
        pytest.param(HOOKS.format(12), {"id": " 3"}, id="id-with-space"),
        pytest.param(HOOKS.format(12), {"schema_id": "1.0"}, id="schema-id-with-fraction"),
        pytest.param(HOOKS.format(12), {"page": "1.0"}, id="page-with-fraction"),
        pytest.param(HOOKS.format(12), {"size": "2.0"}, id="size-with-fraction"),
        pytest.param("/call_center/queues/12.0/hooks", {}, id="queue-id-with-fraction"),
        pytest.param("/call_center/queues/+12", {}, id="queue-id-with-sign"),
        pytest.param(HOOKS.format(12) + "/1.0", {}, id="hook-id-with-fraction"),
        pytest.param("/call_center/queues", {"page": "1.0"}, id="queues-page-with-fraction"),
    ],
)  # fmt: skip
async def test_query_and_path_values_are_the_contracts_words_only(
    db: Conn, api_url: str, make_token: MakeToken, path: str, params: dict[str, str]
) -> None:
    """`enabled` is `true`/`false` (§8), an id, page or size is written in digits: "yes",
    "1.0" or "+3" are what a mistyped script sends, answered 400 rather than read as a guess
    (lookup ids already refuse "3.0"; the platform's engine refuses them too)."""
    await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        is_error(await c.get(path, params=params), 400)


async def test_enabled_true_and_false_in_any_case(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        for word, expected in (("TRUE", [1, 2, 3, 4]), ("False", [5])):
            found = await c.get(HOOKS.format(12), params={"enabled": word})
            assert found.status_code == 200, found.text
            assert ids(found.json()) == expected


async def test_a_schema_timeout_is_never_a_boolean(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    """`true` read as 1 ms would make every delivery of the schema time out."""
    s = await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        for bad in (True, False):
            body = {"name": f"T {bad}", "url": "https://t.example/", "timeout_ms": bad}
            assert "timeout_ms" in is_error(await c.post("/schemas", json=body), 400)
            patch = await c.patch(f"/schemas/{s['crm']}", json={"timeout_ms": bad})
            assert "timeout_ms" in is_error(patch, 400)
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.schemas WHERE name LIKE 'T %'") == 0
    assert (
        await db.fetchval("SELECT timeout_ms FROM queue_hooks.schemas WHERE id = $1", s["crm"])
        == 5000
    )


async def test_patch_fields_names_the_schema_by_schema_or_schema_id_only(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    """`schema.name` is not the schema's id: a PATCH restricted to it changes no schema."""
    s = await seed(db)
    _id, token = await make_token(admin_=True)
    one = HOOKS.format(12) + "/1"
    async with client(api_url, token) as c:
        kept = await c.patch(one, json={"schema": {"id": s["alerts"]}, "fields": ["schema.name"]})
        assert kept.status_code == 200 and kept.json()["schema"]["id"] == str(s["crm"]), kept.text
        moved = await c.patch(one, json={"schema": {"id": s["alerts"]}, "fields": ["schema"]})
        assert moved.json()["schema"]["id"] == str(s["alerts"]), moved.text


async def test_head_answers_as_get_without_a_body(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    """A monitor's HEAD of a hooks list is not told the list does not exist."""
    await seed(db)
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        for path in (HOOKS.format(12), HOOKS.format(12) + "/1", "/events", "/schemas"):
            head = await c.head(path)
            assert head.status_code == 200 and head.content == b"", (path, head.status_code)
            assert head.headers["content-type"].startswith("application/json")
        assert (await c.head(HOOKS.format(20))).status_code == 404
        assert (await c.head("/nowhere")).status_code == 404
    async with client(api_url, None) as c:
        assert (await c.head(HOOKS.format(12))).status_code == 401


async def test_long_lists_of_ids_in_a_refusal_stay_one_short_line(
    db: Conn, api_url: str, make_token: MakeToken
) -> None:
    """A schema used by 1,000 hooks, a delete of 5,000 ids: the detail names the first ids
    and counts the rest, rather than a line of kilobytes (the page shows it in its box)."""
    s = await seed(db)
    for queue_id in range(100, 130):
        await seed_queue(db, queue_id, 1)
        await seed_hook(db, queue_id, "joined", s["crm"])
    _id, token = await make_token(admin_=True)
    async with client(api_url, token) as c:
        used = is_error(await c.delete(f"/schemas/{s['crm']}"), 409)
        assert used.startswith("schema 1 'CRM' is used by hooks 1, 2, 3, ") and len(used) < 300
        assert "and 23 more" in used, used
        missing = is_error(
            await c.delete(HOOKS.format(12), params={"id": list(range(1, 5001))}), 404
        )
        assert missing.startswith("no hooks 6, 7, 8, ") and len(missing) < 300, missing
        assert "and 4985 more" in missing and "none deleted" in missing
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.hooks") == 36


async def test_openapi_document(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as c:
        doc = (await c.get("/openapi.json")).json()
    assert "/api/call_center/queues/{queue_id}/hooks" in doc["paths"]
    assert {"get", "post", "delete"} <= set(
        doc["paths"]["/api/call_center/queues/{queue_id}/hooks"]
    )


async def test_openapi_document_declares_the_errors_the_api_gives(api_url: str) -> None:
    """A client generated from the document must expect the §8 error object: never
    FastAPI's 422 `HTTPValidationError` (validation is answered 400), and the 409 of a
    schema in use and the 413 of a body too large are declared where they happen."""
    async with httpx.AsyncClient(base_url=api_url) as c:
        doc = (await c.get("/openapi.json")).json()
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "422" not in answers, (method, path)
            for code in ("400", "401", "404"):
                assert answers[code]["content"]["application/json"]["schema"] == error
            if method in {"post", "put", "patch"}:
                assert "413" in answers, (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "409" in doc["paths"]["/api/schemas/{id}"]["delete"]["responses"]


# -- a change through the API reaches a running worker -------------------------------------------
async def test_api_changes_reach_a_running_worker(
    db: Conn, api_url: str, make_token: MakeToken, platform: Platform, receiver: Receiver,
    start_worker: StartWorker,
) -> None:  # fmt: skip
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/marker"), name="M"))
    crm = await seed_schema(db, receiver.url("/crm"), name="CRM")
    _id, token = await make_token(admin_=True)
    await start_worker()
    async with client(api_url, token) as c:
        made = await c.post(HOOKS.format(1), json={"event": "joined", "schema": {"id": crm}})
        assert made.status_code == 200, made.text
        await asyncio.sleep(2.0)  # the contract's promise: counts for events 2 s after commit
        assert len(await delivered(platform, receiver, "/crm")) == 1
        one = HOOKS.format(1) + f"/{made.json()['id']}"
        assert (await c.patch(one, json={"enabled": False})).status_code == 200
        await asyncio.sleep(2.0)
        assert len(await delivered(platform, receiver, "/crm")) == 0
        assert (await c.patch(one, json={"enabled": True})).status_code == 200
        await asyncio.sleep(2.0)
        assert len(await delivered(platform, receiver, "/crm")) == 1
        assert (await c.delete(one)).status_code == 200
        await asyncio.sleep(2.0)
        assert len(await delivered(platform, receiver, "/crm")) == 0


# -- health, for the orchestrator: no token, outside /api --------------------------------------
async def test_healthz_and_readyz_need_no_token_and_are_not_in_the_api_document(
    api_url: str,
) -> None:
    root = api_url.removesuffix("/api")
    async with httpx.AsyncClient(base_url=root) as c:
        alive = await c.get("/healthz")
        assert alive.status_code == 200 and alive.text == "ok\n"
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and ready.text == "ready: postgresql ok\n"
        is_error(await c.post("/readyz"), 405)
        paths = (await c.get("/api/openapi.json")).json()["paths"]
    assert not {"/healthz", "/readyz"} & set(paths)
