"""The console's pages as an operator reads them: the list, a conversation, the actions there
and their messages, and text from WhatsApp users shown as text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
from console_support import (
    ADMIN_PASSWORD,
    Console,
    cheap_passwords,
    console_app,
    console_settings,
    signed_in,
    visible_text,
)
from memory_data import OUTSIDE_WINDOW, MemoryConsoleData

from console.data import ConversationState
from main import create_app

HOUR = 3600.0
PAYLOADS = ("<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss=1">')


async def admin(console: Console) -> Console:
    await signed_in(console.client, "admin", ADMIN_PASSWORD)
    return console


def link_texts(html: str) -> list[str]:
    """The text of each conversation's link, in the order shown."""
    links = re.findall(r'<a href="/console/conversations/\d+">(.*?)</a>', html, re.S)
    return [visible_text(link).strip() for link in links]


# ---------------------------------------------------------------------------------------------
# The list


async def test_list_is_most_recent_first_and_waiting_ones_stand_out(database_url: str) -> None:
    data = MemoryConsoleData()
    now = data.clock()
    old = data.add_conversation(name="Old Waiting", at=now - 3 * HOUR)
    data.add_entry(old, "user", "I asked for a person", at=now - 3 * HOUR)
    data.set_state(old, ConversationState.WAITING)
    recent = data.add_conversation(name="Recent Assistant", at=now - HOUR)
    data.add_entry(recent, "user", "Do you open on Sundays?", at=now - HOUR)
    data.add_entry(recent, "assistant", "Yes, from 9 to 13.", at=now - HOUR + 5)
    middle = data.add_conversation(number="5511977776666", at=now - 2 * HOUR)
    data.set_state(middle, ConversationState.OPERATOR, "maria")
    async with console_app(database_url, data) as console:
        html = (await (await admin(console)).client.get("/console")).text
    links = link_texts(html)
    assert [link.split()[0] for link in links] == ["Recent", "5511977776666", "Old"]
    assert "Waiting" in links[2] and not any("Waiting" in link for link in links[:2])
    assert "With maria" in links[1]
    assert "Yes, from 9 to 13." in links[0]  # the preview
    assert 'class="row state-waiting"' in html
    assert "Padaria Central" not in html  # one business: not named on every row
    stamp = datetime.fromtimestamp(now - HOUR + 5, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'<time datetime="{stamp}">' in html


async def test_list_filters_by_state_and_searches_names_and_numbers(database_url: str) -> None:
    data = MemoryConsoleData()
    ana = data.add_conversation(name="Ana Souza", number="5511900001111")
    bruno = data.add_conversation(name="Bruno Lima", number="5521900002222")
    data.set_state(bruno, ConversationState.WAITING)
    data.add_conversation(name="Carla Dias", number="5531900003333")
    data.set_state(ana, ConversationState.OPERATOR, "admin")
    async with console_app(database_url, data) as console:
        client = (await admin(console)).client

        async def names(query: str) -> list[str]:
            return [t.split()[0] for t in link_texts((await client.get(f"/console?{query}")).text)]

        assert sorted(await names("")) == ["Ana", "Bruno", "Carla"]
        assert await names("state=waiting") == ["Bruno"]
        assert await names("state=operator") == ["Ana"]
        assert await names("state=assistant") == ["Carla"]
        assert await names("q=lima") == ["Bruno"]
        assert await names("q=3190000") == ["Carla"]
        assert await names("state=waiting&q=ana") == []
        assert await names("state=nonsense") != []  # an unknown filter shows everything
        page = (await client.get("/console?state=waiting&q=ana")).text
        assert "No conversation matches." in page
        assert 'data-live="/console/live/list?state=waiting&amp;q=ana"' in page
        rows = (await client.get("/console/live/list?state=waiting")).text
        assert "<html" not in rows and "Bruno Lima" in rows and "Ana Souza" not in rows


async def test_the_list_names_businesses_when_there_are_several(database_url: str) -> None:
    data = MemoryConsoleData(("Padaria Central", "Oficina Rápida"))
    data.add_conversation(business="Oficina Rápida", name="Bruno")
    async with console_app(database_url, data) as console:
        html = (await (await admin(console)).client.get("/console")).text
    assert "Oficina Rápida" in link_texts(html)[0]


# ---------------------------------------------------------------------------------------------
# A conversation


async def test_transcript_oldest_first_with_authors_sources_and_events(database_url: str) -> None:
    data = MemoryConsoleData()
    now = data.clock()
    conversation = data.add_conversation(name="Ana", number="5511900001111", at=now - 50)
    data.add_entry(conversation, "user", "first question", at=now - 40)
    data.add_entry(conversation, "assistant", "an answer", at=now - 30, sources=("menu.pdf",))
    data.add_entry(conversation, "event", "Asked for a person", at=now - 20)
    data.add_entry(conversation, "operator", "a person answers", at=now - 10, operator="maria")
    data.set_state(conversation, ConversationState.OPERATOR, "maria")
    async with console_app(database_url, data) as console:
        client = (await admin(console)).client
        html = (await client.get(f"/console/conversations/{conversation}")).text
    text = visible_text(html)
    said = ("first question", "an answer", "Asked for", "a person answers")
    order = [text.index(s) for s in said]
    assert order == sorted(order)
    assert "Sources: menu.pdf" in text
    assert "maria (operator)" in text and "With maria" in text
    assert "+5511900001111" in text
    for name in ("Take over", "Hand back", "Send", "Sign out"):
        assert f">{name}</button>" in html
    assert '<label for="reply">Reply</label>' in html
    assert html.count("<time datetime=") == 5  # the four lines and the window's end


async def test_take_over_reply_and_hand_back_say_what_happened(database_url: str) -> None:
    data = MemoryConsoleData()
    conversation = data.add_conversation(name="Ana")
    data.add_entry(conversation, "user", "I want a person")
    data.set_state(conversation, ConversationState.WAITING)
    async with console_app(database_url, data) as console:
        client = (await admin(console)).client
        base = f"/console/conversations/{conversation}"

        response = await client.post(f"{base}/take-over")
        assert response.status_code == 303 and response.headers["location"] == base
        page = (await client.get(base)).text
        assert "You took over this conversation." in page and "With you" in page
        assert data.state_of(conversation).operator == "admin"
        assert "You took over" not in (await client.get(base)).text  # shown once

        await client.post(f"{base}/reply", data={"text": "  Hello, Ana! I am here.  "})
        page = (await client.get(base)).text
        assert ">Sent.</p>" in page and 'data-reply-sent="1"' in page
        assert data.sent == [(conversation, "admin", "Hello, Ana! I am here.")]
        assert "Hello, Ana! I am here." in visible_text(page)

        await client.post(f"{base}/reply", data={"text": "   "})
        assert "Write a reply first." in (await client.get(base)).text
        await client.post(f"{base}/reply", data={"text": "x" * 8001})
        assert "at most 8000 characters" in (await client.get(base)).text
        assert len(data.sent) == 1

        await client.post(f"{base}/hand-back")
        page = (await client.get(base)).text
        assert "Handed back: the assistant answers again." in page
        assert data.state_of(conversation).state == ConversationState.ASSISTANT


async def test_a_reply_outside_the_window_is_refused_with_the_reason(database_url: str) -> None:
    data = MemoryConsoleData()
    conversation = data.add_conversation(name="Ana")
    data.add_entry(conversation, "user", "hello", at=data.clock() - 25 * HOUR)
    async with console_app(database_url, data) as console:
        client = (await admin(console)).client
        base = f"/console/conversations/{conversation}"
        before = (await client.get(base)).text
        assert "WhatsApp accepts no reply until they write again" in before
        await client.post(f"{base}/reply", data={"text": "Are you still there?"})
        page = (await client.get(base)).text
    assert f"Not sent. {OUTSIDE_WINDOW}" in page
    assert 'class="flash flash-error" role="alert"' in page
    assert "data-reply-sent" not in page
    assert data.sent == []


async def test_an_unknown_conversation_is_404(database_url: str) -> None:
    async with console_app(database_url) as console:
        client = (await admin(console)).client
        for path in ("/console/conversations/999", "/console/conversations/abc"):
            response = await client.get(path)
            assert response.status_code == 404
            assert "There is nothing here" in response.text
        assert (await client.post("/console/conversations/999/take-over")).status_code == 404


async def test_the_live_partial_is_the_transcript_alone(database_url: str) -> None:
    data = MemoryConsoleData()
    conversation = data.add_conversation(name="Ana")
    async with console_app(database_url, data) as console:
        client = (await admin(console)).client
        data.add_entry(conversation, "user", "a message that just arrived")
        partial = (await client.get(f"/console/live/conversations/{conversation}")).text
    assert "a message that just arrived" in partial
    assert "<html" not in partial and "<textarea" not in partial


# ---------------------------------------------------------------------------------------------
# What WhatsApp users write stays text


async def test_markup_from_users_and_gemini_is_shown_as_text(database_url: str) -> None:
    data = MemoryConsoleData()
    conversation = data.add_conversation(name=PAYLOADS[0] + " Ana", number="5511900001111")
    data.add_entry(conversation, "user", PAYLOADS[1])
    data.add_entry(conversation, "assistant", "**bold** <b>not bold</b>", sources=(PAYLOADS[1],))
    data.set_state(conversation, ConversationState.OPERATOR, PAYLOADS[0])
    async with console_app(database_url, data) as console:
        client = (await admin(console)).client
        pages = [
            (await client.get(path)).text
            for path in (
                "/console",
                "/console/live/list",
                f"/console/conversations/{conversation}",
                f"/console/live/conversations/{conversation}",
            )
        ]
    for html in pages:
        assert "<script>window" not in html and "<img src=x" not in html
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;" in pages[2]
    assert "&lt;b&gt;not bold&lt;/b&gt;" in pages[2]


async def test_a_fresh_service_with_the_console_lists_nothing_yet(tmp_path: Path) -> None:
    """`make run` with CONSOLE_PASSWORD on an empty database: the store's data, no message yet."""
    app = create_app(console_settings(f"sqlite:///{tmp_path}/empty.db"))
    app.state.console.passwords = cheap_passwords()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await signed_in(client, "admin", ADMIN_PASSWORD)
            assert "No conversations yet." in (await client.get("/console")).text
            assert (await client.get("/console/conversations/1")).status_code == 404
            operators = (await client.get("/console/operators")).text
            assert "default" in operators  # the one business, to give operators
