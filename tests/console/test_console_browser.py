"""The console in a real browser (Debian's Chromium driven by Playwright), served by a real
uvicorn, used only through what a person sees: labels, buttons, links and text."""

from __future__ import annotations

import re

from browser_support import (  # the fixtures are used by name
    DESKTOP,
    PHONE,
    browser_fixture,  # noqa: F401
    data_fixture,  # noqa: F401
    mark,
    not_reloaded,
    open_tab,
    served_fixture,  # noqa: F401
    sign_in,
)
from console.data import ConversationState
from console_support import Served
from memory_data import MemoryConsoleData
from playwright.sync_api import Browser, expect

LIVE_MS = 5000  # the contract: new conversations and messages appear within 5 seconds
SCRIPT_NAME = '<script>alert("name")</script>Eve'
IMAGE_TEXT = '<img src=x onerror="window.__xss=1;alert(1)"> hi'


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
