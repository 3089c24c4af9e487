"""`queue-hooks schemas ...` against the real database: secrets, URLs, headers, refusals."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest

from tests.support.cli import Ran, cli
from tests.support.helpers import Conn, seed_hook, seed_queue, seed_schema
from worker import secrets

KEY = "an operator's key for the tests"
OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
GIVEN = "whsec_" + base64.b64encode(b"g" * 24).decode()


def printed_secret(ran: Ran) -> str:
    found = re.findall(r"^secret: (whsec_\S+)$", ran.ok, re.MULTILINE)
    assert len(found) == 1, ran.out
    return str(found[0])


async def stored(db: Conn, schema_id: int = 1) -> dict[str, object]:
    row = await db.fetchrow("SELECT * FROM queue_hooks.schemas WHERE id = $1", schema_id)
    assert row is not None
    return dict(row)


# -- add ---------------------------------------------------------------------------------------
async def test_add_prints_a_new_secret_once_and_list_never_shows_it(db: Conn) -> None:
    ran = await cli(
        "schemas", "add", "--domain", 1, "--name", "CRM", "--url", "https://crm.example.com/hook",
        "--timeout-ms", 2500, "--header", "Authorization=Bearer t0ken", "--header", "X-Tenant=t1",
    )  # fmt: skip
    assert ran.ok.startswith("added schema 1 'CRM' in domain 1: POST https://crm.example.com/hook")
    secret = printed_secret(ran)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    row = await stored(db)
    assert row["secret"] == secret and row["domain_id"] == 1 and row["timeout_ms"] == 2500
    assert row["headers"] == {"Authorization": "Bearer t0ken", "X-Tenant": "t1"}
    assert row["url"] == "https://crm.example.com/hook"

    listing = (await cli("schemas", "list")).ok + (await cli("schemas", "list", "--json")).ok
    assert secret not in listing and "whsec_" not in listing and "t0ken" not in listing
    assert (await cli("schemas", "list")).ok.splitlines()[1].split() == [
        "1", "1", "CRM", "https://crm.example.com/hook", "2500", "ms", "Authorization,",
        "X-Tenant", "plain", "0",
    ]  # fmt: skip
    (item,) = (await cli("schemas", "list", "--json")).json()["items"]
    assert item == {
        "id": 1, "domain_id": 1, "name": "CRM", "url": "https://crm.example.com/hook",
        "timeout_ms": 2500, "headers": ["Authorization", "X-Tenant"], "secret": "plain",
        "previous_secret_until": None, "hooks": 0, "max_per_second": None,
    }  # fmt: skip


async def test_max_per_second_is_set_on_add_changed_and_dropped_on_edit(db: Conn) -> None:
    await cli(
        "schemas", "add", "--domain", 1, "--name", "CRM", "--url", "https://crm.example.com/h",
        "--no-secret", "--max-per-second", 12.5,
    )  # fmt: skip
    assert (await stored(db))["max_per_second"] == 12.5
    await cli("schemas", "edit", 1, "--max-per-second", 40)
    assert (await stored(db))["max_per_second"] == 40
    (item,) = (await cli("schemas", "list", "--json")).json()["items"]
    assert item["max_per_second"] == 40
    await cli("schemas", "edit", 1, "--no-rate-limit")
    assert (await stored(db))["max_per_second"] is None
    refused = await cli("schemas", "edit", 1, "--max-per-second", 0)
    assert refused.code != 0 and (await stored(db))["max_per_second"] is None


async def test_with_a_secret_key_secrets_are_stored_encrypted(db: Conn) -> None:
    env = {"QUEUE_HOOKS_SECRET_KEY": KEY}
    ran = await cli(
        "schemas", "add", "--domain", 1, "--name", "CRM", "--url", "https://x.io/", env=env
    )
    secret = printed_secret(ran)
    assert "stored encrypted" in ran.out
    first = await stored(db)
    assert str(first["secret"]).startswith("enc:") and secret not in str(first["secret"])
    assert secrets.unseal(str(first["secret"]), KEY) == secret
    assert (await cli("schemas", "list", "--json")).json()["items"][0]["secret"] == "encrypted"

    rotated = printed_secret(await cli("schemas", "rotate-secret", 1, env=env))
    after = await stored(db)
    assert secrets.unseal(str(after["secret"]), KEY) == rotated != secret
    assert secrets.unseal(str(after["previous_secret"]), KEY) == secret


async def test_add_without_a_secret_or_with_a_given_one(db: Conn) -> None:
    ran = await cli(
        "schemas", "add", "--domain", 1, "--name", "A", "--url", "https://a.io/", "--no-secret"
    )
    assert "whsec_" not in ran.ok and "not signed" in ran.ok
    assert (await stored(db, 1))["secret"] is None
    ran = await cli(
        "schemas", "add", "--domain", 1, "--name", "B", "--url", "https://b.io/", "--secret", GIVEN
    )
    assert GIVEN not in ran.ok  # the admin has it already
    assert (await stored(db, 2))["secret"] == GIVEN
    assert (await cli("schemas", "list", "--json")).json()["items"][0]["secret"] == "none"


PRIVATE = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/h",
    "http://127.1/h",
    "http://[::1]:8080/h",
    "http://[::ffff:169.254.169.254]/",
    "http://2130706433/",
]


@pytest.mark.parametrize("url", PRIVATE)
async def test_add_and_edit_refuse_a_private_address(db: Conn, url: str) -> None:
    """Issue 12 defect 6: refused at save time, with the guard's reason, unless allowed."""
    ran = await cli("schemas", "add", "--domain", 1, "--name", "L", "--url", url)
    assert "is not a public address" in ran.error and "nothing saved" in ran.error
    assert "QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS" in ran.error
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.schemas") == 0
    assert (
        await cli("schemas", "add", "--domain", 1, "--name", "P", "--url", "https://p.example/")
    ).ok
    ran = await cli("schemas", "edit", 1, "--url", url)
    assert "is not a public address" in ran.error
    assert (await stored(db, 1))["url"] == "https://p.example/"


async def test_private_address_allowed_when_private_targets_are(db: Conn) -> None:
    ran = await cli(
        "schemas", "add", "--domain", 1, "--name", "M", "--url", "http://127.0.0.1/h",
        env={"QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS": "true"},
    )  # fmt: skip
    assert ran.code == 0 and ran.err == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(("--url", "ftp://crm.example/"), "bad URL 'ftp://crm.example/': it must "
                     "start with http:// or https://", id="ftp"),
        pytest.param(("--url", "crm.example/hook"), "must start with http:// or https://",
                     id="no-scheme"),
        pytest.param(("--url", "https://"), "bad URL 'https://': it has no host", id="no-host"),
        pytest.param(("--url", "http:///path"), "it has no host", id="empty-host"),
        pytest.param(("--url", "https://crm example.com/"), "contains white space", id="space"),
        pytest.param(("--url", "https://crm.example:99999/"), "bad URL", id="bad-port"),
        pytest.param(("--url", "https://[::1/"), "bad URL", id="bad-ipv6"),
        pytest.param(("--header", "NoValue"), "--header 'NoValue' is not NAME=VALUE",
                     id="header-not-a-pair"),
        pytest.param(("--header", "Bad Name=x"), "not a valid header name", id="header-name"),
        pytest.param(("--header", "Content-Type=text/plain"),
                     "--header 'Content-Type': queue-hooks sets this header itself",
                     id="header-protected"),
        pytest.param(("--header", "webhook-signature=v1,x"), "sets this header itself",
                     id="header-signature"),
        pytest.param(("--secret", "whsec_dG9vc2hvcnQ="), "bad secret: 8 bytes", id="short-secret"),
        pytest.param(("--secret", "sk_live_abc"), "bad secret: a secret is whsec_",
                     id="not-whsec"),
        pytest.param(("--secret", "whsec_!!!"), "bad secret: not base64", id="not-base64"),
        pytest.param(("--secret", GIVEN, "--no-secret"), "give --secret or --no-secret",
                     id="both"),
        pytest.param(("--name", " "), "--name cannot be empty", id="empty-name"),
        pytest.param(("--name", "CRM"), 'database refused: duplicate key value violates unique '
                     'constraint "schemas_domain_name_key" (Key (domain_id, name)=(1, CRM) '
                     "already exists.)", id="duplicate-name"),
        pytest.param(("--timeout-ms", 0), "Invalid value for '--timeout-ms'", id="timeout"),
        pytest.param(("--domain", "one"), "Invalid value for '--domain'", id="domain"),
    ],
)  # fmt: skip
async def test_add_refused(db: Conn, args: tuple[object, ...], says: str) -> None:
    await seed_schema(db, "https://crm.example/", name="CRM")
    # The options given replace the defaults; a flag (--no-secret) is given alone.
    options: dict[object, object] = {"--domain": 1, "--name": "New", "--url": "https://x.io/"}
    flag = "--no-secret" in args
    rest = [a for a in args if a != "--no-secret"]
    options.update(zip(rest[::2], rest[1::2], strict=True))
    argv = [x for pair in options.items() for x in pair] + (["--no-secret"] if flag else [])
    assert says in (await cli("schemas", "add", *argv)).error
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.schemas") == 1


# -- list --------------------------------------------------------------------------------------
async def test_list_searches_names_in_any_case_and_filters_by_domain(db: Conn) -> None:
    await seed_schema(db, "https://a.example/", name="CRM")
    await seed_schema(db, "https://b.example/", name="crm staging")
    await seed_schema(db, "https://c.example/", name="Alerts")
    await seed_schema(db, "https://d.example/", name="Other CRM", domain=2)

    async def names(*args: object) -> list[str]:
        return [s["name"] for s in (await cli("schemas", "list", "--json", *args)).json()["items"]]

    assert await names() == ["CRM", "crm staging", "Alerts", "Other CRM"]
    assert await names("--search", "Crm") == ["CRM", "crm staging", "Other CRM"]
    assert await names("--search", "STAGING") == ["crm staging"]
    assert await names("--search", "crm", "--domain", 1) == ["CRM", "crm staging"]
    assert await names("--domain", 2) == ["Other CRM"]
    assert await names("--search", "nothing") == []
    page = (await cli("schemas", "list", "--json", "--size", 3)).json()
    assert len(page["items"]) == 3 and page["next"] == 2 and page["total"] == 4
    assert (await cli("schemas", "list", "--size", 3)).ok.endswith(
        "schemas 1-3 of 4; next page: --page 2\n"
    )
    assert (await cli("schemas", "list", "--search", "zzz")).ok == "no schemas\n"


# -- edit --------------------------------------------------------------------------------------
async def test_edit_changes_what_it_is_told(db: Conn) -> None:
    await seed_schema(
        db, "https://a.example/", name="CRM", headers={"authorization": "old", "X-A": "1"}
    )
    ran = await cli(
        "schemas", "edit", 1, "--name", "CRM main", "--url", "https://b.example/new",
        "--timeout-ms", 700, "--header", "Authorization=new", "--header", "X-B=2",
    )  # fmt: skip
    assert ran.ok == "changed schema 1 'CRM': headers, name, timeout_ms, url\n"
    row = await stored(db)
    assert row["name"] == "CRM main" and row["url"] == "https://b.example/new"
    assert row["timeout_ms"] == 700
    # A header is replaced whatever the case of its name; the others are kept.
    assert row["headers"] == {"X-A": "1", "Authorization": "new", "X-B": "2"}

    await cli("schemas", "edit", 1, "--clear-headers", "--header", "X-C=3")
    assert (await stored(db))["headers"] == {"X-C": "3"}
    await cli("schemas", "edit", 1, "--clear-headers")
    assert (await stored(db))["headers"] == {}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param((9, "--name", "X"), "no schema 9", id="unknown"),
        pytest.param((1,), "nothing to change", id="nothing"),
        pytest.param((1, "--url", "mailto:a@b.c"), "bad URL 'mailto:a@b.c'", id="bad-url"),
        pytest.param((1, "--header", "Host=evil"), "sets this header itself", id="header"),
        pytest.param((1, "--name", "Taken"), 'violates unique constraint "schemas_domain_name_key"',
                     id="duplicate-name"),
        pytest.param((1, "--timeout-ms", 600_001), "Invalid value for '--timeout-ms'",
                     id="timeout"),
    ],
)  # fmt: skip
async def test_edit_refused(db: Conn, args: tuple[object, ...], says: str) -> None:
    await seed_schema(db, "https://a.example/", name="CRM")
    await seed_schema(db, "https://b.example/", name="Taken")
    before = await stored(db)
    assert says in (await cli("schemas", "edit", *args)).error
    assert await stored(db) == before


# -- rotate-secret -----------------------------------------------------------------------------
async def test_rotate_secret_keeps_the_previous_one_valid_for_the_grace(db: Conn) -> None:
    await seed_schema(db, "https://a.example/", name="CRM", secret=OLD)
    ran = await cli("schemas", "rotate-secret", 1)
    new = printed_secret(ran)
    assert new != OLD and "the previous secret also signs until" in ran.ok
    row = await stored(db)
    assert row["secret"] == new and row["previous_secret"] == OLD
    grace = await db.fetchval("SELECT previous_secret_until - now() FROM queue_hooks.schemas")
    assert timedelta(hours=23, minutes=59) < grace <= timedelta(hours=24)

    listing = (await cli("schemas", "list")).ok
    assert "plain, old one until" in listing and new not in listing and OLD not in listing
    assert (await cli("schemas", "list", "--json")).json()["items"][0]["previous_secret_until"]

    newer = printed_secret(await cli("schemas", "rotate-secret", 1, "--grace", "1h"))
    row = await stored(db)
    assert row["secret"] == newer and row["previous_secret"] == new
    grace = await db.fetchval("SELECT previous_secret_until - now() FROM queue_hooks.schemas")
    assert timedelta(minutes=59) < grace <= timedelta(hours=1)

    ran = await cli("schemas", "rotate-secret", 1, "--grace", 0, "--secret", GIVEN)
    assert "whsec_" not in ran.ok and "the previous secret no longer signs" in ran.ok
    row = await stored(db)
    assert row["secret"] == GIVEN and row["previous_secret"] is None
    assert row["previous_secret_until"] is None


async def test_rotate_secret_of_a_schema_without_one(db: Conn) -> None:
    await seed_schema(db, "https://a.example/", name="CRM")
    ran = await cli("schemas", "rotate-secret", 1)
    assert "it had no secret: its calls are signed from now on" in ran.ok
    row = await stored(db)
    assert row["secret"] == printed_secret(ran) and row["previous_secret"] is None


async def test_rotate_secret_grace_defaults_to_the_setting(db: Conn) -> None:
    await seed_schema(db, "https://a.example/", name="CRM", secret=OLD)
    await cli("schemas", "rotate-secret", 1, env={"QUEUE_HOOKS_SECRET_GRACE": "2h"})
    grace = await db.fetchval("SELECT previous_secret_until - now() FROM queue_hooks.schemas")
    assert timedelta(hours=1, minutes=59) < grace <= timedelta(hours=2)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param((9,), "no schema 9", id="unknown"),
        pytest.param((1, "--grace", "soon"), "--grace: 'soon' is not a duration", id="grace"),
        pytest.param((1, "--secret", "whsec_abc="), "bad secret", id="bad-secret"),
    ],
)
async def test_rotate_secret_refused(db: Conn, args: tuple[object, ...], says: str) -> None:
    await seed_schema(db, "https://a.example/", name="CRM", secret=OLD)
    assert says in (await cli("schemas", "rotate-secret", *args)).error
    assert (await stored(db))["secret"] == OLD


# -- delete ------------------------------------------------------------------------------------
async def test_delete_is_refused_while_hooks_use_the_schema(db: Conn) -> None:
    await seed_queue(db, 12, 1)
    crm = await seed_schema(db, "https://a.example/", name="CRM")
    spare = await seed_schema(db, "https://b.example/", name="Spare")
    hooks = [await seed_hook(db, 12, e, crm) for e in ("joined", "leaving")]
    await seed_hook(db, 12, "missed", crm, enabled=False)  # a disabled hook uses it too

    line = (await cli("schemas", "delete", crm)).error
    assert line.startswith(f"error: schema {crm} 'CRM' is used by hooks {hooks[0]}, {hooks[1]}, 3:")
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.schemas") == 2

    assert (await cli("schemas", "delete", spare)).ok == f"deleted schema {spare} 'Spare'\n"
    await cli("hooks", "delete", *hooks, 3, "--yes")
    assert (await cli("schemas", "delete", crm)).ok == f"deleted schema {crm} 'CRM'\n"
    assert await db.fetchval("SELECT count(*) FROM queue_hooks.schemas") == 0
    assert (await cli("schemas", "delete", crm)).error == f"error: no schema {crm}"
