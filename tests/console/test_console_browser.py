"""The console in a real browser (Debian's Chromium driven by Playwright), served by a real
uvicorn, used only through what a person sees: labels, buttons, links and text."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT
from console_support import ADMIN_PASSWORD, Served, served_console
from memory_data import MemoryConsoleData
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Error,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from console.data import ConversationState

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
LIVE_MS = 5000  # the contract: new conversations and messages appear within 5 seconds
SCREENSHOTS = ROOT / "docs" / "screenshots"
SCRIPT_NAME = '<script>alert("name")</script>Eve'
IMAGE_TEXT = '<img src=x onerror="window.__xss=1;alert(1)"> hi'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium (Playwright never downloads one)"
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Tab:
    """A page, with what it reported: dialogs opened and errors (a CSP violation is one)."""

    page: Page
    url: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def open_tab(
    browser: Browser, served: Served, viewport: ViewportSize, timezone: str = "UTC"
) -> Tab:
    context = browser.new_context(viewport=viewport, timezone_id=timezone, locale="en-GB")
    page = context.new_page()
    tab = Tab(page, served.url)

    def on_dialog(dialog: Dialog) -> None:
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":  # a Content-Security-Policy violation is one
            tab.errors.append(message.text)

    def on_page_error(error: Error) -> None:
        tab.errors.append(str(error))

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return tab


def sign_in(tab: Tab, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    page = tab.page
    page.goto(f"{tab.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()


def mark(page: Page) -> None:
    """A flag that a reload would wipe out."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


@pytest.fixture
def data() -> MemoryConsoleData:
    return MemoryConsoleData()


@pytest.fixture
def served(tmp_path: Path, data: MemoryConsoleData) -> Iterator[Served]:
    with served_console(f"sqlite:///{tmp_path}/browser.db", data) as running:
        yield running


def test_sign_in_list_and_live_updates(
    browser: Browser, served: Served, data: MemoryConsoleData
) -> None:
    ana = data.add_conversation(name="Ana Souza", number="5511900001111")
    data.add_entry(ana, "user", "I would like to talk to a person")
    data.set_state(ana, ConversationState.WAITING)
    tab = open_tab(browser, served, DESKTOP)
    page = tab.page
    sign_in(tab)
    expect(page.get_by_role("link", name=re.compile(r"Ana Souza.*Waiting"))).to_be_visible()
    mark(page)

    bruno = data.add_conversation(name="Bruno Novo", number="5521900002222")
    data.add_entry(bruno, "user", "Hello, is anyone there?")
    expect(page.get_by_role("link", name=re.compile("Bruno Novo"))).to_be_visible(timeout=LIVE_MS)
    links = page.locator("ul.conversations a")
    expect(links.first).to_contain_text("Bruno Novo")  # the most recent first
    assert not_reloaded(page)

    page.get_by_role("link", name=re.compile("Ana Souza")).click()
    expect(page.get_by_text("I would like to talk to a person")).to_be_visible()
    mark(page)
    page.get_by_label("Reply").fill("I am typing this")
    data.add_entry(ana, "user", "Hello? Still there?")
    expect(page.get_by_text("Hello? Still there?")).to_be_visible(timeout=LIVE_MS)
    assert not_reloaded(page)
    expect(page.get_by_label("Reply")).to_have_value("I am typing this")
    assert tab.errors == [] and tab.dialogs == []


def test_take_over_reply_and_hand_back(
    browser: Browser, served: Served, data: MemoryConsoleData
) -> None:
    ana = data.add_conversation(name="Ana Souza", number="5511900001111")
    data.add_entry(ana, "user", "Can a person help me?")
    data.set_state(ana, ConversationState.WAITING)
    tab = open_tab(browser, served, PHONE)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name=re.compile("Ana Souza")).click()

    page.get_by_role("button", name="Take over").click()
    expect(page.get_by_text("You took over this conversation.")).to_be_visible()
    expect(page.get_by_text("With you")).to_be_visible()
    assert data.state_of(ana).state == ConversationState.OPERATOR

    page.get_by_label("Reply").fill("Hi Ana, Maria here. How can I help?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Sent.", exact=True)).to_be_visible()
    expect(page.locator(".transcript")).to_contain_text("Hi Ana, Maria here. How can I help?")
    expect(page.get_by_label("Reply")).to_have_value("")
    assert data.sent == [(ana, "admin", "Hi Ana, Maria here. How can I help?")]

    page.get_by_role("button", name="Hand back").click()
    expect(page.get_by_text("Handed back: the assistant answers again.")).to_be_visible()
    assert data.state_of(ana).state == ConversationState.ASSISTANT
    for name in ("Take over", "Hand back", "Send", "Sign out"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["height"] >= 44, name  # a thumb can hit it
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert tab.errors == [] and tab.dialogs == []


def test_markup_in_names_and_messages_stays_inert_text(
    browser: Browser, served: Served, data: MemoryConsoleData
) -> None:
    eve = data.add_conversation(name=SCRIPT_NAME, number="5511900009999")
    data.add_entry(eve, "user", IMAGE_TEXT)
    tab = open_tab(browser, served, DESKTOP)
    page = tab.page
    sign_in(tab)
    expect(page.get_by_role("link", name=SCRIPT_NAME)).to_be_visible()
    page.get_by_role("link", name=SCRIPT_NAME).click()
    expect(page.get_by_role("heading", name=SCRIPT_NAME)).to_be_visible()
    expect(page.get_by_text(IMAGE_TEXT)).to_be_visible()
    data.add_entry(eve, "user", "<b>" + IMAGE_TEXT + "</b>")  # arrives through a live update
    expect(page.get_by_text("<b>" + IMAGE_TEXT + "</b>")).to_be_visible(timeout=LIVE_MS)
    assert page.locator(".transcript img, .transcript script, .transcript b").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert tab.dialogs == []
    assert tab.errors == []


def test_times_are_shown_in_the_browsers_time_zone(
    browser: Browser, served: Served, data: MemoryConsoleData
) -> None:
    data.add_conversation(name="Ana Souza", at=1_780_000_000)  # 2026-05-28 20:26 UTC
    tab = open_tab(browser, served, DESKTOP, timezone="Asia/Tokyo")
    sign_in(tab)
    shown = tab.page.locator("ul.conversations time").first
    expect(shown).to_have_attribute("datetime", "2026-05-28T20:26:40Z")
    expect(shown).to_contain_text("05:26")  # 29 May in Tokyo
    expect(shown).not_to_contain_text("UTC")


def test_sign_out_ends_the_session(browser: Browser, served: Served) -> None:
    tab = open_tab(browser, served, PHONE)
    page = tab.page
    sign_in(tab)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(f"{tab.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login"))
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_a_wrong_password_shows_an_error(browser: Browser, served: Served) -> None:
    tab = open_tab(browser, served, PHONE)
    page = tab.page
    page.goto(f"{tab.url}/console/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong username or password.")).to_be_visible()
    assert page.context.cookies() == []


# ---------------------------------------------------------------------------------------------
# Screenshots for the README: UPDATE_SCREENSHOTS=1 writes them, other runs leave them alone


def demo_data(data: MemoryConsoleData) -> int:
    now = data.clock()
    people = [
        ("Joana Ribeiro", "5511987650001", ConversationState.ASSISTANT, None, 46 * 60),
        ("Carlos Mendes", "5521912340002", ConversationState.WAITING, None, 17 * 60),
        ("", "5531955550003", ConversationState.ASSISTANT, None, 3 * 3600),
        ("Lucía Fernández", "5491144440004", ConversationState.ASSISTANT, None, 26 * 3600),
    ]
    texts = {
        "Joana Ribeiro": "Vocês abrem no domingo?",
        "Carlos Mendes": "Posso falar com alguém sobre uma encomenda grande?",
        "": "Quanto custa o bolo de cenoura?",
        "Lucía Fernández": "¿Hacen envíos a domicilio?",
    }
    for name, number, state, operator, ago in people:
        conversation = data.add_conversation(name=name, number=number, at=now - ago)
        data.add_entry(conversation, "user", texts[name], at=now - ago)
        data.set_state(conversation, state, operator)
    rafa = data.add_conversation(name="Rafael Costa", number="5511934560005", at=now - 420)
    data.add_entry(rafa, "user", "Oi! Vocês fazem bolo sem glúten?", at=now - 420)
    answer = (
        "Fazemos sim! O bolo de chocolate e o de laranja têm versão sem glúten, "
        "com encomenda de 48 horas."
    )
    data.add_entry(rafa, "assistant", answer, at=now - 415, sources=("Cardápio 2026.pdf",))
    asked = "Quero encomendar um para sábado, mas prefiro falar com uma pessoa"
    data.add_entry(rafa, "user", asked, at=now - 300)
    data.add_entry(rafa, "event", "Asked for a person", at=now - 299)
    data.add_entry(rafa, "event", "Taken over", at=now - 120, operator="maria")
    greeting = "Olá Rafael, aqui é a Maria! Para quantas pessoas seria?"
    data.add_entry(rafa, "operator", greeting, at=now - 110, operator="maria")
    data.add_entry(rafa, "user", "Umas 15 pessoas. Dá para escrever 'Parabéns Lia'?", at=now - 40)
    data.set_state(rafa, ConversationState.OPERATOR, "maria")
    return rafa


def test_the_admin_adds_an_operator_who_then_signs_in(browser: Browser, served: Served) -> None:
    add_maria(browser, served)
    tab = open_tab(browser, served, PHONE)
    sign_in(tab, "maria", MARIA_PASSWORD)
    expect(tab.page.get_by_role("link", name="Operators")).to_have_count(0)


MARIA_PASSWORD = "maria-bakery-2026"


def add_maria(browser: Browser, served: Served) -> None:
    """The admin adds the operator `maria` on the Operators page, serving the one business."""
    tab = open_tab(browser, served, DESKTOP)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name="Operators").click()
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password", exact=True).fill(MARIA_PASSWORD)
    expect(page.get_by_label("Padaria Central")).to_be_checked()
    page.get_by_role("button", name="Add operator").click()
    expect(page.get_by_text("Added maria.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.context.close()


def test_screenshots(browser: Browser, served: Served, data: MemoryConsoleData) -> None:
    if not os.environ.get("UPDATE_SCREENSHOTS"):
        pytest.skip("UPDATE_SCREENSHOTS=1 writes docs/screenshots/")
    rafa = demo_data(data)
    add_maria(browser, served)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        tab = open_tab(browser, served, viewport, timezone="America/Sao_Paulo")
        sign_in(tab, "maria", MARIA_PASSWORD)
        tab.page.screenshot(path=str(SCREENSHOTS / f"console-list{suffix}.png"))
        tab.page.goto(f"{tab.url}/console/conversations/{rafa}")
        tab.page.get_by_label("Reply").fill("Claro! Escrevemos sim.")
        tab.page.screenshot(path=str(SCREENSHOTS / f"console-conversation{suffix}.png"))
        tab.page.context.close()
