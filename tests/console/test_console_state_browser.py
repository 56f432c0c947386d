"""Pages that follow the state, in a real browser (Debian's Chromium through Playwright, a real
uvicorn over an SQLite file, the fake upstreams): a conversation's actions change live with its
state, list previews as WhatsApp showed the message, a business's first document listed at
once, and the Usage page at 390 and 1280 CSS pixels, with figures and with none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import DESKTOP, PHONE, mark, not_reloaded, open_tab, sign_in
from console_apps import Served, number_id, served_console
from knowledge_support import set_state, titles
from playwright.sync_api import Browser, FilePayload, Page, ViewportSize, expect
from respx_upstreams import FakeUpstreams, gemini_answer
from usage_support import add_day

from domain.types import ConversationState

LIVE_MS = 5000  # the contract: the page follows within 5 seconds
KNOWLEDGE_LIVE_MS = 8000  # the documents' table asks every 5 seconds while one is processing
ANA = {"name": "Ana Souza", "wa_id": "5511900001111"}
NOTES = b"We open every day from 7 to 19, Sundays until 13.\n"


def buttons(page: Page) -> tuple[int, int]:
    """How many `Take over` and `Hand back` buttons the page shows."""
    take, hand = (page.get_by_role("button", name=n) for n in ("Take over", "Hand back"))
    return take.count(), hand.count()


def test_the_actions_follow_the_state_live(browser: Browser, served: Served) -> None:
    ana = served.write("Hello", **ANA)
    tab = open_tab(browser, served.url, PHONE)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name=re.compile("Ana Souza")).click()
    expect(page.get_by_role("button", name="Take over")).to_be_visible()
    assert buttons(page) == (1, 0)

    page.get_by_role("button", name="Take over").click()
    expect(page.get_by_text("You took over this conversation.")).to_be_visible()
    expect(page.get_by_role("button", name="Hand back")).to_be_visible()
    assert buttons(page) == (0, 1)

    mark(page)  # from here on, only live updates change the page
    key = served.conversation(ana).conversation_key
    desk = served.app.state.console.desk
    served.run(desk.hand_back(served.conversation(ana), "maria"))  # a colleague, elsewhere
    expect(page.get_by_role("button", name="Take over")).to_be_visible(timeout=LIVE_MS)
    expect(page.get_by_role("button", name="Hand back")).to_have_count(0)

    served.write("/human", **ANA)  # the customer asks for a person while the page is open
    expect(page.get_by_text("Waiting for a person")).to_be_visible(timeout=LIVE_MS)
    entries = page.locator(".transcript .entry")
    expect(entries.last).to_contain_text("Asked for a person")
    texts = entries.all_inner_texts()
    asked = next(i for i, t in enumerate(texts) if "Asked for a person" in t)
    assert any(t.startswith("Ana Souza") and "/human" in t for t in texts[:asked])
    assert buttons(page) == (1, 0)

    served.run(
        served.store.states.change(
            key, ConversationState.OPERATOR, event="taken_over", operator="maria"
        )
    )
    expect(page.get_by_text("With maria")).to_be_visible(timeout=LIVE_MS)
    expect(page.get_by_role("button", name="Hand back")).to_be_visible()
    assert buttons(page) == (0, 1)
    assert not_reloaded(page)

    page.get_by_role("button", name="Hand back").click()  # the button a live update put there
    expect(page.get_by_text("Handed back: the assistant answers again.")).to_be_visible()
    assert served.conversation(ana).state == ConversationState.ASSISTANT
    assert buttons(page) == (1, 0)
    assert tab.errors == [] and tab.dialogs == []


def test_list_previews_show_answers_as_whatsapp_showed_them(
    browser: Browser, served: Served
) -> None:
    served.fakes.gemini_queue.append(
        gemini_answer("**Yes**, ~~no~~ see [the menu](https://shop.test/menu) <script>x</script>")
    )
    served.write("Open today?", **ANA)
    tab = open_tab(browser, served.url, DESKTOP)
    page = tab.page
    sign_in(tab)
    link = page.get_by_role("link", name=re.compile("Ana Souza"))
    expect(link).to_contain_text(
        "*Yes*, ~no~ see the menu (https://shop.test/menu) <script>x</script>"
    )
    assert "**" not in link.inner_text() and "](" not in link.inner_text()
    assert page.locator("ul.conversations script").count() == 0
    assert tab.errors == [] and tab.dialogs == []


# ---------------------------------------------------------------------------------------------
# A business's first document


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
def test_the_first_upload_is_listed_at_once_then_ready(
    browser: Browser, served: Served, viewport: ViewportSize
) -> None:
    fake = served.fakes.file_search
    fake.polls_until_done = 1_000_000  # processed once the test says so
    google = fake.hold("POST", "/fileSearchStores")  # the business's store is slow to come
    tab = open_tab(browser, served.url, viewport)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name="Knowledge").click()
    expect(page.get_by_text("No documents yet.")).to_be_visible()

    document: FilePayload = {"name": "opening-hours.txt", "mimeType": "text/plain", "buffer": NOTES}
    page.get_by_label("Document").set_input_files(document)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Uploaded opening-hours.txt.")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("opening-hours.txt"))
    expect(row).to_contain_text("Processing")  # before File Search even has a store for it
    expect(page.get_by_text("No documents yet.")).to_have_count(0)
    assert served.run(titles(served)) == []

    mark(page)
    google.set()
    deadline = 10.0
    while served.run(titles(served)) != ["opening-hours.txt"] and deadline > 0:
        page.wait_for_timeout(100)
        deadline -= 0.1
    expect(row).to_contain_text("Processing")
    served.run(set_state(served, "opening-hours.txt", "active"))
    for operation in fake.operations.values():
        operation.polls_left = 0
    expect(row).to_contain_text("Ready", timeout=KNOWLEDGE_LIVE_MS)
    expect(page.get_by_role("row", name=re.compile("opening-hours.txt"))).to_have_count(1)
    expect(row.get_by_role("button", name="Delete opening-hours.txt")).to_be_visible()
    assert not_reloaded(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert tab.errors == [] and tab.dialogs == []


# ---------------------------------------------------------------------------------------------
# Usage at a phone's width and a desktop's


@pytest.fixture(name="two_shops")
def two_shops_fixture(tmp_path: Path, fakes: FakeUpstreams) -> Iterator[Served]:
    """Two businesses with long names (the figures, when a test adds them, to the first)."""
    businesses = ["Padaria e Confeitaria Central do Bairro", "Oficina Mecânica Rápida"]
    with served_console(f"sqlite:///{tmp_path}/usage.db", fakes, businesses=businesses) as served:
        yield served


async def large_figures(served: Served) -> None:
    """Twelve days of a few messages and a busy shop's tokens and cost: wide numbers."""
    usage = served.store.usage
    for ago in range(12):
        await add_day(
            usage,
            ago,
            number_id(0),
            messages=3,
            answers=3,
            handoffs=1,
            prompt_tokens=4_876_543,
            output_tokens=876_543,
            tts_tokens=76_543,
            searches=321,
            cost_usd=12.3456,
        )


def open_usage(browser: Browser, served: Served, viewport: ViewportSize) -> Page:
    tab = open_tab(browser, served.url, viewport)
    sign_in(tab)
    tab.page.get_by_role("link", name="Usage").click()
    expect(tab.page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    return tab.page


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
def test_usage_fits_the_width_and_its_table_scrolls_in_its_box(
    browser: Browser, two_shops: Served, viewport: ViewportSize
) -> None:
    two_shops.run(large_figures(two_shops))
    page = open_usage(browser, two_shops, viewport)
    expect(page.locator("#usage-charts")).to_be_visible()
    box = page.get_by_role("region", name="Usage by day")
    expect(box).to_be_visible()
    assert box.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    cue = page.get_by_text("The table scrolls sideways: swipe it to see every column.")
    wider = box.evaluate("el => el.scrollWidth > el.clientWidth")
    if viewport is PHONE:
        assert wider  # the table is wider than the phone: its box scrolls, and says so
        expect(cue).to_be_visible()
        box.evaluate("el => el.scrollBy(1000, 0)")
        assert box.evaluate("el => el.scrollLeft") > 0
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    else:
        assert not wider
        expect(cue).to_be_hidden()
    expect(page.get_by_role("row", name=re.compile("Total"))).to_contain_text("58,518,516")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
def test_usage_with_nothing_yet_says_so(
    browser: Browser, two_shops: Served, viewport: ViewportSize
) -> None:
    page = open_usage(browser, two_shops, viewport)
    expect(page.get_by_text("No usage yet: nothing was received or spent")).to_be_visible()
    expect(page.locator("table")).to_have_count(0)
    expect(page.locator("canvas")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
