"""The admin page (contract §10) in a real headless chromium, against a real `queue-hooks api`
process and the real PostgreSQL. Screenshots of each main state go to .local/artifacts/page/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from schemas.queue_types import LABELS_RU, events_fired
from tests.integration.conftest import MakeToken
from tests.support.browser import ARGS, ARTIFACTS, CHROMIUM, chromium_or_reason
from tests.support.cli import cli
from tests.support.helpers import Conn, seed_hook, seed_queue, seed_schema, until

DESKTOP = {"width": 1200, "height": 820}
NARROW = {"width": 390, "height": 844}
SCHEMAS = ("CRM", "Billing", "Slack", "Analytics", "Archive", "Tickets", "Mail", "SMS")


@pytest.fixture
def url(api_url: str) -> str:
    """The page, served at `/` by the `queue-hooks api` process of tests/integration/conftest."""
    return api_url.removesuffix("api")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    reason = chromium_or_reason()
    if reason:
        pytest.skip(reason)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        await context.close()
    assert not errors, f"the page's script failed: {errors}"


@dataclass
class Seed:
    db: Conn
    schemas: dict[str, int]
    admin: str  # an admin token of domain 1
    make_token: MakeToken


async def admin(*args: object) -> str:
    """A `queue-hooks` admin command that must succeed; its output."""
    return (await cli(*args)).ok


@pytest.fixture
async def seed(db: Conn, make_token: MakeToken) -> Seed:
    """Queues 12 (inbound), 13 (chat) and 14 (offline) of domain 1, 99 of domain 2; schemas."""
    await seed_queue(db, 12, queue_type=1)
    await seed_queue(db, 13, queue_type=6)
    await seed_queue(db, 14, queue_type=0)
    await seed_queue(db, 99, queue_type=1, domain=2)
    schemas = {
        name: await seed_schema(db, f"https://{name.lower()}.example/hook", name=name)
        for name in SCHEMAS
    }
    await seed_schema(db, "https://other.example/hook", name="Other domain CRM", domain=2)
    _, admin = await make_token(admin_=True)
    return Seed(db, schemas, admin, make_token)


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, url: str, token: str, lang: str = "en") -> None:
    await page.goto(url)
    await page.locator("#lang").select_option(lang)
    await page.get_by_label("Access token" if lang == "en" else "Токен доступа").fill(token)
    await page.get_by_role("button", name="Sign in" if lang == "en" else "Войти").click()


async def pick_queue(page: Page, queue_id: int) -> None:
    await page.get_by_label("Queue", exact=True).select_option(str(queue_id))
    await expect(page.locator("#status")).to_have_text("")


def row(page: Page, text: str) -> Any:
    return page.locator("#rows tr", has_text=text)


async def hooks_of(db: Conn, queue_id: int) -> list[tuple[str, int, bool]]:
    rows = await db.fetch(
        "SELECT event, schema_id, enabled FROM queue_hooks.hooks WHERE queue_id = $1 ORDER BY id",
        queue_id,
    )
    return [(r["event"], r["schema_id"], r["enabled"]) for r in rows]


async def test_an_admin_adds_toggles_edits_and_deletes_hooks(
    page: Page, url: str, seed: Seed
) -> None:
    await sign_in(page, url, seed.admin)
    picker = page.get_by_label("Queue", exact=True)
    await expect(picker.locator("option")).to_have_count(3)  # not domain 2's queue 99
    await pick_queue(page, 12)
    await expect(page.locator("#empty")).to_be_visible()
    await shot(page, "01-signed-in-empty-queue")

    # Add: the dialog lists only the events an inbound queue fires; the schema box searches.
    await page.get_by_role("button", name="Add").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    save = dialog.get_by_role("button", name="Save")
    await expect(save).to_be_disabled()
    event = dialog.get_by_label("Event")
    await expect(event).to_be_focused()
    offered = await event.locator("option:not([disabled])").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert offered == events_fired(1)
    assert "answered" not in offered and "active" not in offered
    await event.select_option("leaving")
    await expect(save).to_be_disabled()
    box = dialog.get_by_role("combobox", name="Schema")
    await box.click()
    await expect(page.locator("#schema-list").get_by_role("option")).to_have_count(len(SCHEMAS))
    await box.press_sequentially("bil")
    await expect(page.locator("#schema-list").get_by_role("option")).to_have_count(1)
    await expect(page.locator("#schema-list").get_by_role("option")).to_contain_text("Billing")
    await shot(page, "02-add-dialog-schema-search")
    await box.press("Escape")  # the first Esc closes the list, not the dialog
    await expect(page.locator("#schema-list")).to_be_hidden()
    await expect(dialog).to_be_visible()
    await box.press("ArrowDown")  # opens it again
    await expect(page.locator("#schema-list").get_by_role("option")).to_have_count(1)
    await box.press("ArrowDown")
    await box.press("Enter")  # picks the option
    await expect(box).to_have_value("Billing")
    await expect(save).to_be_enabled()
    await box.press("Enter")  # submits the dialog
    await expect(dialog).to_be_hidden()
    billing = row(page, "Billing")
    await expect(billing).to_have_count(1)
    assert await hooks_of(seed.db, 12) == [("leaving", seed.schemas["Billing"], True)]
    await shot(page, "03-hook-added")

    # The switch: a PATCH at once; the database follows.
    switch = billing.get_by_role("switch")
    await expect(switch).to_be_checked()
    await switch.click()
    await expect(switch).not_to_be_checked()
    await expect(switch).to_be_enabled()

    async def disabled() -> bool:
        return await hooks_of(seed.db, 12) == [("leaving", seed.schemas["Billing"], False)]

    await until(disabled)
    await shot(page, "04-hook-switched-off")

    # Edit: the same dialog, to replace the schema.
    await billing.get_by_role("button", name=re.compile("^Edit")).click()
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("heading")).to_have_text("Edit the hook")
    await expect(event).to_have_value("leaving")
    await expect(box).to_have_value("Billing")
    await expect(save).to_be_enabled()
    await box.fill("")
    await expect(save).to_be_disabled()
    await box.press_sequentially("cr")
    await expect(page.locator("#schema-list").get_by_role("option")).to_have_count(1)
    await page.locator("#schema-list").get_by_role("option", name=re.compile("CRM")).click()
    await shot(page, "05-edit-dialog")
    await save.click()
    await expect(dialog).to_be_hidden()
    await expect(row(page, "CRM")).to_have_count(1)
    assert await hooks_of(seed.db, 12) == [("leaving", seed.schemas["CRM"], False)]

    # A second hook, then both selected and deleted after the confirmation.
    await page.get_by_role("button", name="Add").click()
    await event.select_option("joined")
    await box.click()
    await box.press_sequentially("sla")
    await page.locator("#schema-list").get_by_role("option", name=re.compile("Slack")).click()
    await save.click()
    await expect(page.locator("#rows tr")).to_have_count(2)

    bulk = page.locator("#delete-selected")
    await expect(bulk).to_be_hidden()
    for name in ("CRM", "Slack"):
        await row(page, name).get_by_role("checkbox").check()
    await expect(bulk).to_have_text("Delete selected (2)")
    await bulk.click()
    confirm = page.get_by_role("dialog")
    await expect(confirm).to_contain_text("Delete 2 selected hooks?")
    await shot(page, "06-confirm-delete-two")
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(confirm).to_be_hidden()
    assert len(await hooks_of(seed.db, 12)) == 2  # asked first: nothing deleted on Cancel

    await bulk.click()
    await confirm.get_by_role("button", name="Delete").click()
    await expect(page.locator("#empty")).to_be_visible()
    assert await hooks_of(seed.db, 12) == []
    await expect(bulk).to_be_hidden()


async def test_pages_of_10_go_forward_and_back(page: Page, url: str, seed: Seed) -> None:
    made: list[int] = []
    for schema in SCHEMAS:
        for event in events_fired(0):
            if len(made) < 45:
                made.append(await seed_hook(seed.db, 14, event, seed.schemas[schema]))
    await sign_in(page, url, seed.admin)
    await pick_queue(page, 14)
    rows = page.locator("#rows tr")
    await expect(rows).to_have_count(40)  # the platform's default page
    await page.get_by_label("Rows per page").select_option("10")
    await expect(rows).to_have_count(10)

    async def shown() -> list[int]:
        ids: list[str] = await rows.evaluate_all("trs => trs.map(tr => tr.dataset.id)")
        return [int(i) for i in ids]

    assert await shown() == made[:10]
    prev, nxt = page.get_by_role("button", name="Previous"), page.get_by_role("button", name="Next")
    await expect(prev).to_be_disabled()
    for number in range(2, 6):
        await nxt.click()
        await expect(page.locator("#page-no")).to_have_text(f"Page {number}")
    await expect(rows).to_have_count(5)
    assert await shown() == made[40:]
    await expect(nxt).to_be_disabled()  # `next` was false
    await shot(page, "07-last-page-of-10")
    await prev.click()
    await expect(page.locator("#page-no")).to_have_text("Page 4")
    await expect(rows).to_have_count(10)
    assert await shown() == made[30:40]
    await page.get_by_label("Rows per page").select_option("100")
    await expect(rows).to_have_count(45)
    await expect(nxt).to_be_disabled()

    # The refresh button shows a change made elsewhere (here: SQL).
    await seed.db.execute("DELETE FROM queue_hooks.hooks WHERE id = $1", made[0])
    await page.get_by_role("button", name="Refresh").click()
    await expect(rows).to_have_count(44)


async def test_a_read_only_token_sees_no_edit_controls(page: Page, url: str, seed: Seed) -> None:
    await seed_hook(seed.db, 12, "leaving", seed.schemas["CRM"])
    await seed_hook(seed.db, 12, "joined", seed.schemas["Slack"], enabled=False)
    _, reader = await seed.make_token(grants={12: "read"})
    await sign_in(page, url, reader)
    picker = page.get_by_label("Queue", exact=True)
    await expect(picker.locator("option")).to_have_count(1)  # only what it may read
    await expect(page.locator("#rows tr")).to_have_count(2)
    await expect(page.get_by_text("Read only", exact=True)).to_be_visible()
    for role in ("switch", "checkbox"):
        await expect(page.get_by_role(role)).to_have_count(0)
    for name in ("Add", "Edit", "Delete"):
        await expect(page.get_by_role("button", name=re.compile(f"^{name}"))).to_have_count(0)
    await expect(row(page, "Slack")).to_contain_text("Off")
    await shot(page, "08-read-only")

    # The person's language: the events' Russian labels of contract §3.
    await page.locator("#lang").select_option("ru")
    await expect(row(page, "CRM")).to_contain_text(LABELS_RU["leaving"])
    await expect(page.get_by_role("columnheader", name="Событие")).to_be_visible()
    await shot(page, "09-read-only-ru")
    await page.set_viewport_size(NARROW)  # type: ignore[arg-type]
    await shot(page, "10-read-only-ru-narrow")


async def test_a_refused_change_shows_its_reason(page: Page, url: str, seed: Seed) -> None:
    hook = await seed_hook(seed.db, 12, "leaving", seed.schemas["CRM"])
    editor_id, editor = await seed.make_token(grants={12: "edit"})

    # A wrong token: the API's words, and the sign-in form stays.
    await sign_in(page, url, "qh_not-a-token")
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_label("Access token")).to_be_visible()

    await sign_in(page, url, editor)
    switch = row(page, "CRM").get_by_role("switch")
    await expect(switch).to_be_checked()
    # The right is taken away behind the page's back: the switch is refused, and says why.
    await admin("revoke-grant", "--token", editor_id, "--queue", 12)
    await admin("grant", "--token", editor_id, "--queue", 12, "--read")
    async with httpx.AsyncClient(base_url=url) as client:
        refused = await client.patch(
            f"api/call_center/queues/12/hooks/{hook}",
            json={"enabled": False},
            headers={"X-Webitel-Access": editor},
        )
    assert refused.status_code == 403
    await switch.click()
    alert = page.locator("#error")
    await expect(alert).to_have_text(re.compile(re.escape(refused.json()["detail"])))
    await expect(switch).to_be_checked()  # it shows what the database holds
    assert await hooks_of(seed.db, 12) == [("leaving", seed.schemas["CRM"], True)]
    await shot(page, "11-refused-switch")

    # A duplicate hook: the dialog stays open with the database's reason.
    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, url, seed.admin)
    await pick_queue(page, 12)
    await page.get_by_role("button", name="Add").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Event").select_option("leaving")
    box = dialog.get_by_role("combobox", name="Schema")
    await box.click()
    await box.press_sequentially("crm")
    await page.locator("#schema-list").get_by_role("option", name=re.compile("CRM")).click()
    await dialog.get_by_role("button", name="Save").click()
    reason = dialog.get_by_role("alert")
    await expect(reason).to_be_visible()
    await expect(reason).not_to_be_empty()
    await expect(dialog).to_be_visible()
    await page.set_viewport_size(NARROW)  # type: ignore[arg-type]
    await shot(page, "12-refused-duplicate-narrow")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert len(await hooks_of(seed.db, 12)) == 1
