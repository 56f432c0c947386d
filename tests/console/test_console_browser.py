"""The console in a real browser (Debian's Chromium driven by Playwright), served by a real
uvicorn over an SQLite file, customers writing through signed webhooks, used only through what
a person sees: labels, buttons, links and text."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from browser_support import DESKTOP, PHONE, mark, not_reloaded, open_tab, sign_in
from console_apps import Served
from playwright.sync_api import Browser, expect

from domain.types import ConversationState

LIVE_MS = 5000  # the contract: new conversations and messages appear within 5 seconds
SCRIPT_NAME = '<script>alert("name")</script>Eve'
IMAGE_TEXT = '<img src=x onerror="window.__xss=1;alert(1)"> hi'
ANA = {"name": "Ana Souza", "wa_id": "5511900001111"}


def test_sign_in_list_and_live_updates(browser: Browser, served: Served) -> None:
    served.write("I would like to talk to a person", **ANA)
    ana = served.write("/human", **ANA)
    tab = open_tab(browser, served.url, DESKTOP)
    page = tab.page
    sign_in(tab)
    expect(page.get_by_role("link", name=re.compile(r"Ana Souza.*Waiting"))).to_be_visible()
    mark(page)

    served.write("Hello, is anyone there?", name="Bruno Novo", wa_id="5521900002222")
    expect(page.get_by_role("link", name=re.compile("Bruno Novo"))).to_be_visible(timeout=LIVE_MS)
    links = page.locator("ul.conversations a")
    expect(links.first).to_contain_text("Bruno Novo")  # the most recent first
    assert not_reloaded(page)

    page.get_by_role("link", name=re.compile("Ana Souza")).click()
    expect(page.get_by_text("I would like to talk to a person", exact=True)).to_be_visible()
    mark(page)
    page.get_by_label("Reply").fill("I am typing this")
    assert served.write("Hello? Still there?", **ANA) == ana
    expect(page.get_by_text("Hello? Still there?", exact=True)).to_be_visible(timeout=LIVE_MS)
    assert not_reloaded(page)
    expect(page.get_by_label("Reply")).to_have_value("I am typing this")
    assert tab.errors == [] and tab.dialogs == []


def test_take_over_reply_and_hand_back(browser: Browser, served: Served) -> None:
    served.write("Can a person help me?", **ANA)
    ana = served.write("/human", **ANA)
    sent_before = len(served.fakes.sent())
    tab = open_tab(browser, served.url, PHONE)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name=re.compile("Ana Souza")).click()

    page.get_by_role("button", name="Take over").click()
    expect(page.get_by_text("You took over this conversation.")).to_be_visible()
    expect(page.get_by_text("With you")).to_be_visible()
    assert served.conversation(ana).state == ConversationState.OPERATOR

    page.get_by_label("Reply").fill("Hi Ana, Maria here. How can I help?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Sent.", exact=True)).to_be_visible()
    expect(page.locator(".transcript")).to_contain_text("Hi Ana, Maria here. How can I help?")
    expect(page.get_by_label("Reply")).to_have_value("")
    [delivered] = served.fakes.sent()[sent_before:]
    assert delivered["to"] == ANA["wa_id"]
    assert delivered["text"]["body"] == "Hi Ana, Maria here. How can I help?"
    key = served.conversation(ana).conversation_key
    last = served.run(served.store.transcripts.entries(key))[-1]
    assert (last.author, last.text) == ("admin", "Hi Ana, Maria here. How can I help?")

    hand_back = page.get_by_role("button", name="Hand back").bounding_box()
    assert hand_back is not None and hand_back["height"] >= 44  # a thumb can hit it
    page.get_by_role("button", name="Hand back").click()
    expect(page.get_by_text("Handed back: the assistant answers again.")).to_be_visible()
    assert served.conversation(ana).state == ConversationState.ASSISTANT
    for name in ("Take over", "Send", "Sign out"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["height"] >= 44, name  # a thumb can hit it
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert tab.errors == [] and tab.dialogs == []


def test_markup_in_names_and_messages_stays_inert_text(browser: Browser, served: Served) -> None:
    eve = {"name": SCRIPT_NAME, "wa_id": "5511900009999"}
    served.write(IMAGE_TEXT, **eve)
    tab = open_tab(browser, served.url, DESKTOP)
    page = tab.page
    sign_in(tab)
    expect(page.get_by_role("link", name=SCRIPT_NAME)).to_be_visible()
    page.get_by_role("link", name=SCRIPT_NAME).click()
    expect(page.get_by_role("heading", name=SCRIPT_NAME)).to_be_visible()
    expect(page.get_by_text(IMAGE_TEXT, exact=True)).to_be_visible()
    served.write("<b>" + IMAGE_TEXT + "</b>", **eve)  # arrives through a live update
    expect(page.get_by_text("<b>" + IMAGE_TEXT + "</b>", exact=True)).to_be_visible(timeout=LIVE_MS)
    assert page.locator(".transcript img, .transcript script, .transcript b").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert tab.dialogs == []
    assert tab.errors == []


def test_times_are_shown_in_the_browsers_time_zone(browser: Browser, served: Served) -> None:
    ana = served.write("Hello", **ANA)
    at = datetime.fromtimestamp(served.conversation(ana).last_activity_at, ZoneInfo("UTC"))
    tab = open_tab(browser, served.url, DESKTOP, timezone="Asia/Tokyo")
    sign_in(tab)
    shown = tab.page.locator("ul.conversations time").first
    expect(shown).to_have_attribute("datetime", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    expect(shown).to_contain_text(at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M"))
    expect(shown).not_to_contain_text("UTC")


def test_sign_out_ends_the_session(browser: Browser, served: Served) -> None:
    tab = open_tab(browser, served.url, PHONE)
    page = tab.page
    sign_in(tab)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(f"{tab.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login"))
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_a_wrong_password_shows_an_error(browser: Browser, served: Served) -> None:
    tab = open_tab(browser, served.url, PHONE)
    page = tab.page
    page.goto(f"{tab.url}/console/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong username or password.")).to_be_visible()
    assert page.context.cookies() == []
