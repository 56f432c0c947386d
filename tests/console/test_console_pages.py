"""The console's pages as an operator reads them: the list, a conversation, the actions there
and their messages, and text from WhatsApp users shown as text; over the real store, filled
by signed webhooks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
from console_apps import (
    ADMIN_PASSWORD,
    Console,
    cheap_passwords,
    console_app,
    console_settings,
    number_id,
)
from console_support import operator_client, signed_in, visible_text
from fake_file_search import grounded_response
from respx_upstreams import FakeUpstreams, gemini_answer

from answering.handoff import HANDOFF_REQUESTED
from answering.operators import HANDED_BACK, TAKEN_OVER
from domain.types import ConversationState
from main import create_app

HOUR = 3600.0
PAYLOADS = ("<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss=1">')
BSUID = "US.13491208655302741918"


async def admin(console: Console) -> Console:
    await signed_in(console.client, "admin", ADMIN_PASSWORD)
    return console


def link_texts(html: str) -> list[str]:
    """The text of each conversation's link, in the order shown."""
    links = re.findall(r'<a href="/console/conversations/\d+">(.*?)</a>', html, re.S)
    return [visible_text(link).strip() for link in links]


async def put(
    console: Console,
    conversation_id: int,
    state: ConversationState,
    event: str,
    operator: str | None = None,
) -> None:
    """What the handoff or an operator elsewhere did to a conversation, through the store."""
    key = (await console.conversation(conversation_id)).conversation_key
    await console.store.states.change(key, state, event=event, operator=operator)


# ---------------------------------------------------------------------------------------------
# The list


async def test_list_is_most_recent_first_and_waiting_ones_stand_out(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        old = await console.write("I asked for a person", name="Old Waiting", wa_id="5511911110001")
        await console.write("/human", name="Old Waiting", wa_id="5511911110001")
        recent = await console.write("Hello", name="Recent Assistant", wa_id="5511911110002")
        middle = await console.write("Hi there", name=None, wa_id="5511977776666")
        await put(console, middle, ConversationState.OPERATOR, TAKEN_OVER, "maria")
        fakes.gemini_queue.append(gemini_answer("Yes, from 9 to 13."))
        await console.write(
            "Do you open on Sundays?", name="Recent Assistant", wa_id="5511911110002"
        )
        html = (await (await admin(console)).client.get("/console")).text
        newest = (await console.conversation(recent)).last_activity_at
        assert (await console.conversation(old)).state == ConversationState.WAITING
    links = link_texts(html)
    assert [link.split()[0] for link in links] == ["Recent", "5511977776666", "Old"]
    assert "Waiting" in links[2] and not any("Waiting" in link for link in links[:2])
    assert "With maria" in links[1]
    assert "Yes, from 9 to 13." in links[0]  # the preview
    assert 'class="row state-waiting"' in html
    assert 'class="business"' not in html  # one business: not named on every row
    stamp = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'<time datetime="{stamp}">' in html


async def test_list_filters_by_state_and_searches_names_and_numbers(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        ana = await console.write("Hello", name="Ana Souza", wa_id="5511900001111")
        await console.write("Hello", name="Bruno Lima", wa_id="5521900002222")
        await console.write("/human", name="Bruno Lima", wa_id="5521900002222")
        await console.write("Hello", name="Carla Dias", wa_id="5531900003333")
        await put(console, ana, ConversationState.OPERATOR, TAKEN_OVER, "admin")
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


async def test_the_list_names_businesses_when_there_are_several(
    database_url: str, fakes: FakeUpstreams
) -> None:
    businesses = ("Padaria Central", "Oficina Rápida")
    async with console_app(database_url, fakes, businesses=businesses) as console:
        await console.write("Hello", name="Bruno", to=number_id(1))
        html = (await (await admin(console)).client.get("/console")).text
    assert "Oficina Rápida" in link_texts(html)[0]


# ---------------------------------------------------------------------------------------------
# Who a customer without a profile name is


async def test_a_nameless_customer_is_listed_by_number_not_by_business_scoped_id(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        both = await console.write("Hello", name=None, wa_id="5511955550003", user_id=BSUID)
        client = (await admin(console)).client
        listed = link_texts((await client.get("/console")).text)
        html = (await client.get(f"/console/conversations/{both}")).text
        found = link_texts((await client.get("/console?q=5511955550003")).text)
    assert len(listed) == 1 and listed[0].startswith("5511955550003")
    assert "US.1349" not in listed[0]
    assert "<h1>5511955550003</h1>" in html
    assert BSUID not in html
    assert found == listed  # found by their number too


async def test_a_customer_known_only_by_business_scoped_id_is_listed_by_it(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        only = await console.write("Hello", name=None, wa_id="", user_id=BSUID)
        client = (await admin(console)).client
        listed = link_texts((await client.get("/console")).text)
        html = (await client.get(f"/console/conversations/{only}")).text
    assert len(listed) == 1 and listed[0].startswith(BSUID)
    assert f"<h1>{BSUID}</h1>" in html
    assert 'class="number"' not in html  # no number to show


# ---------------------------------------------------------------------------------------------
# A conversation


async def test_transcript_oldest_first_with_authors_sources_and_events(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        fakes.gemini_queue.append(grounded_response("an answer", ["menu.pdf"]))
        conversation = await console.write("first question", name="Ana", wa_id="5511900001111")
        await put(console, conversation, ConversationState.WAITING, HANDOFF_REQUESTED)
        await put(console, conversation, ConversationState.OPERATOR, TAKEN_OVER, "maria")
        key = (await console.conversation(conversation)).conversation_key
        await console.store.states.operator_wrote(key, "maria", ["a person answers"])
        client = (await admin(console)).client
        html = (await client.get(f"/console/conversations/{conversation}")).text
    text = visible_text(html)
    said = ("first question", "an answer", "Asked for", "Taken over by maria", "a person answers")
    order = [text.index(s) for s in said]
    assert order == sorted(order)
    assert "Sources: menu.pdf" in text
    assert "maria (operator)" in text and "With maria" in text
    assert "+5511900001111" in text
    for name in ("Hand back", "Send", "Sign out"):  # maria has it: it can be handed back
        assert f">{name}</button>" in html
    assert ">Take over</button>" not in html
    assert '<label for="reply">Reply</label>' in html
    assert html.count("<time datetime=") == 6  # the five lines and the window's end


async def test_take_over_reply_and_hand_back_say_what_happened(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        await console.write("I want a person", name="Ana")
        conversation = await console.write("/human", name="Ana")
        client = (await admin(console)).client
        base = f"/console/conversations/{conversation}"
        sent_before = len(fakes.sent())

        response = await client.post(f"{base}/take-over")
        assert response.status_code == 303 and response.headers["location"] == base
        page = (await client.get(base)).text
        assert "You took over this conversation." in page and "With you" in page
        assert (await console.conversation(conversation)).operator == "admin"
        assert "You took over" not in (await client.get(base)).text  # shown once

        await client.post(f"{base}/reply", data={"text": "  Hello, Ana! I am here.  "})
        page = (await client.get(base)).text
        assert ">Sent.</p>" in page and 'data-reply-sent="1"' in page
        [delivered] = fakes.sent()[sent_before:]
        assert delivered["to"] == "5511900001111"
        assert delivered["text"]["body"] == "Hello, Ana! I am here."
        key = (await console.conversation(conversation)).conversation_key
        last = (await console.store.transcripts.entries(key))[-1]
        assert (last.author, last.text) == ("admin", "Hello, Ana! I am here.")
        assert "Hello, Ana! I am here." in visible_text(page)

        await client.post(f"{base}/reply", data={"text": "   "})
        assert "Write a reply first." in (await client.get(base)).text
        await client.post(f"{base}/reply", data={"text": "x" * 8001})
        assert "at most 8000 characters" in (await client.get(base)).text
        assert len(fakes.sent()) == sent_before + 1

        await client.post(f"{base}/hand-back")
        page = (await client.get(base)).text
        assert "Handed back: the assistant answers again." in page
        assert (await console.conversation(conversation)).state == ConversationState.ASSISTANT


async def test_a_reply_outside_the_window_is_refused_with_the_reason(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes, console_session_hours=48) as console:
        conversation = await console.write("hello", name="Ana")
        sent_before = len(fakes.sent())
        client = (await admin(console)).client
        base = f"/console/conversations/{conversation}"
        assert "WhatsApp accepts no reply" not in (await client.get(base)).text
        console.clock.advance(25 * HOUR)  # the customer wrote 25 hours ago
        before = (await client.get(base)).text
        assert "WhatsApp accepts no reply until they write again" in before
        await client.post(f"{base}/reply", data={"text": "Are you still there?"})
        page = (await client.get(base)).text
    assert (
        "Not sent. The customer last wrote 25 hours ago. WhatsApp only allows replies within "
        "24 hours of the customer&#39;s last message, so nothing was sent."
    ) in page
    assert 'class="flash flash-error" role="alert"' in page
    assert "data-reply-sent" not in page
    assert len(fakes.sent()) == sent_before


async def test_an_unknown_conversation_is_404(database_url: str, fakes: FakeUpstreams) -> None:
    async with console_app(database_url, fakes) as console:
        client = (await admin(console)).client
        for path in ("/console/conversations/999", "/console/conversations/abc"):
            response = await client.get(path)
            assert response.status_code == 404
            assert "There is nothing here" in response.text
        assert (await client.post("/console/conversations/999/take-over")).status_code == 404


async def test_the_live_partial_is_the_transcript_alone(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation = await console.write("Hello", name="Ana")
        client = (await admin(console)).client
        await console.write("a message that just arrived", name="Ana")
        partial = (await client.get(f"/console/live/conversations/{conversation}")).text
    assert "a message that just arrived" in partial
    assert "<html" not in partial and "<textarea" not in partial


# ---------------------------------------------------------------------------------------------
# What WhatsApp users write stays text


async def test_markup_from_users_and_gemini_is_shown_as_text(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        answer = grounded_response("**bold** <b>not bold</b>", [PAYLOADS[1]])
        fakes.gemini_queue.append(answer)
        name = PAYLOADS[0] + " Ana"
        conversation = await console.write(PAYLOADS[1], name=name, wa_id="5511900001111")
        await put(console, conversation, ConversationState.OPERATOR, TAKEN_OVER, PAYLOADS[0])
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
    settings = console_settings(f"sqlite:///{tmp_path}/empty.db", external_workers=True)
    app = create_app(settings)
    app.state.console.passwords = cheap_passwords()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await signed_in(client, "admin", ADMIN_PASSWORD)
            assert "No conversations yet." in (await client.get("/console")).text
            assert (await client.get("/console/conversations/1")).status_code == 404
            operators = (await client.get("/console/operators")).text
            assert "default" in operators  # the one business, to give operators
            usage = (await client.get("/console/usage")).text
            assert "No usage yet: nothing was received or spent" in visible_text(usage)
            assert "<tbody>" not in usage
            knowledge = (await client.get("/console/knowledge")).text
            assert "No documents yet." in knowledge


async def test_a_stale_take_over_or_hand_back_changes_nothing_and_says_why(
    database_url: str, fakes: FakeUpstreams
) -> None:
    """Two operators on the same page: the second click finds the conversation moved."""
    async with console_app(database_url, fakes, businesses=["Padaria Central"]) as console:
        conversation = await console.write("/human", name="Ana", to=number_id(0))
        base = f"/console/conversations/{conversation}"
        client = (await admin(console)).client
        key = (await console.conversation(conversation)).conversation_key
        async with operator_client(console, "olivia", ["Padaria Central"]) as olivia:
            taken = await olivia.post(f"{base}/take-over")
            assert taken.status_code == 303, taken.status_code
            response = await client.post(f"{base}/take-over")  # the admin's page was stale
            assert response.status_code == 303 and response.headers["location"] == base
            page = (await client.get(base)).text
            assert "Not taken over: another operator has this conversation now." in page
            assert (await console.conversation(conversation)).operator == "olivia"

            await olivia.post(f"{base}/hand-back")
            await client.post(f"{base}/hand-back")  # handed back already
            page = (await client.get(base)).text
            assert "Nothing to hand back: no operator has this conversation now." in page
        assert (await console.conversation(conversation)).state == ConversationState.ASSISTANT
        events = [
            (e.text, e.author)
            for e in await console.store.transcripts.entries(key)
            if e.role == "event" and e.text in (TAKEN_OVER, HANDED_BACK)
        ]
        assert events == [(TAKEN_OVER, "olivia"), (HANDED_BACK, "olivia")]
