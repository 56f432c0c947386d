"""Console pages that follow a conversation's state, over HTTP and the real store (SQLite and
PostgreSQL): the actions each state allows (in the page and in its live update), list previews
as WhatsApp showed the message, events after the message that caused them, and the Usage page
with nothing to show yet."""

from __future__ import annotations

import re
from html import unescape

import httpx
from console_apps import ADMIN_PASSWORD, Console, console_app, transcript
from console_support import signed_in, visible_text
from respx_upstreams import FakeUpstreams, gemini_answer

from answering.handoff import HANDOFF_REQUESTED
from answering.operators import TAKEN_OVER
from domain.types import ConversationState

TAKE_OVER = ">Take over</button>"
HAND_BACK = ">Hand back</button>"


async def admin(console: Console) -> httpx.AsyncClient:
    await signed_in(console.client, "admin", ADMIN_PASSWORD)
    return console.client


async def put(console: Console, conversation_id: int, state: ConversationState) -> None:
    """What the handoff or an operator elsewhere did to a conversation, through the store."""
    key = (await console.conversation(conversation_id)).conversation_key
    event = TAKEN_OVER if state is ConversationState.OPERATOR else HANDOFF_REQUESTED
    operator = "maria" if state is ConversationState.OPERATOR else None
    await console.store.states.change(key, state, event=event, operator=operator)


def actions(html: str) -> list[str]:
    """The action buttons a page (or its live update) offers, in order."""
    return re.findall(r">(Take over|Hand back)</button>", html)


def previews(page: str) -> list[str]:
    """Each list entry's preview as a person reads it."""
    found = re.findall(r'<span class="preview">(.*?)</span>', page)
    return [unescape(visible_text(p).strip()) for p in found]


def transfer(reason: str) -> httpx.Response:
    """Gemini answering with a call of transfer_to_human."""
    call = {"functionCall": {"name": "transfer_to_human", "args": {"reason": reason}}}
    content = {"role": "model", "parts": [{"text": "One moment."}, call]}
    return httpx.Response(
        200,
        json={
            "candidates": [{"content": content, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 5},
        },
    )


# ---------------------------------------------------------------------------------------------
# The actions a state allows


async def test_each_state_offers_only_its_actions_in_the_page_and_its_live_update(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation = await console.write("Hello", name="Ana")
        client = await admin(console)
        page = f"/console/conversations/{conversation}"
        live = f"/console/live/conversations/{conversation}"
        seen: dict[str, tuple[list[str], list[str]]] = {}
        seen["assistant"] = (actions((await client.get(page)).text), [])
        seen["assistant"][1].extend(actions((await client.get(live)).text))
        await console.write("/human", name="Ana")
        seen["waiting"] = (
            actions((await client.get(page)).text),
            actions((await client.get(live)).text),
        )
        await put(console, conversation, ConversationState.OPERATOR)  # another operator
        seen["operator"] = (
            actions((await client.get(page)).text),
            actions((await client.get(live)).text),
        )
        await client.post(f"{page}/hand-back")
        back = (await client.get(page)).text
        await client.post(f"{page}/take-over")
        mine = (await client.get(page)).text
        partial = (await client.get(live)).text
    assert seen == {
        "assistant": (["Take over"], ["Take over"]),
        "waiting": (["Take over"], ["Take over"]),
        "operator": (["Hand back"], ["Hand back"]),
    }
    assert actions(back) == ["Take over"] and actions(mine) == ["Hand back"]
    assert "With you" in mine
    # The live update carries the actions apart, for the script to put in the page's #actions.
    assert '<div class="buttons" id="actions">' in mine
    assert re.search(r'<div hidden data-live-into="actions">\s*<form', partial)
    assert "<textarea" not in partial and "<html" not in partial


# ---------------------------------------------------------------------------------------------
# Previews as WhatsApp showed the message


MARKDOWN_CASES = [
    # (what Gemini wrote, the preview: what the customer saw on WhatsApp, on one line)
    (
        "**Bold**, __strong__, *it*, ~~gone~~ and [our menu](https://shop.test/menu?a=1&b=2)",
        "*Bold*, *strong*, _it_, ~gone~ and our menu (https://shop.test/menu?a=1&b=2)",
    ),
    ("***both*** and **bold with _italic_ inside**", "*_both_* and *bold with _italic_ inside*"),
    (
        "# Opening hours\n\n- **Mon**: 8-18\n- Sun: closed",
        "*Opening hours* - *Mon*: 8-18 - Sun: closed",
    ),
    ("Run:\n```\npip install\n```\ndone", "Run: pip install done"),
    ("[**Order**](https://shop.test/o/1)", "*Order* (https://shop.test/o/1)"),
]


async def test_list_previews_show_answers_as_whatsapp_showed_them(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        ids = []
        for index, (markdown, _) in enumerate(MARKDOWN_CASES):
            fakes.gemini_queue.append(gemini_answer(markdown))
            ids.append(
                await console.write("Hi", name=f"Customer {index}", wa_id=f"55119000{index:05}")
            )
        client = await admin(console)
        html = (await client.get("/console")).text
        live = (await client.get("/console/live/list")).text
        pages = [(await client.get(f"/console/conversations/{i}")).text for i in ids]
    expected = [shown for _, shown in reversed(MARKDOWN_CASES)]  # the newest first
    assert previews(html) == expected == previews(live)
    for html_page, (_, shown) in zip(pages, MARKDOWN_CASES, strict=True):
        # The preview says what the transcript's last entry says, on one line.
        last = re.findall(r'<div class="text">(.*?)</div>', html_page, re.S)[-1]
        assert shown in " ".join(unescape(last).replace("```", "").split())
    for text in previews(html):
        assert "**" not in text and "__" not in text and "~~" not in text and "](" not in text


async def test_previews_of_hostile_text_stay_inert_and_unbalanced_markup_as_sent(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        fakes.gemini_queue.append(
            gemini_answer("**<script>alert(1)</script>** [x](javascript:alert(1))")
        )
        await console.write("Hi", name="Eve", wa_id="5511900000001")
        fakes.gemini_queue.append(gemini_answer("**unbalanced and __half [open](no-close"))
        await console.write("Hi", name="Uma", wa_id="5511900000002")
        # A customer's own words are shown as they wrote them, asterisks and tags included.
        await console.write("/human", name="Caio", wa_id="5511900000003")
        await console.write("**my** <b>order</b>", name="Caio", wa_id="5511900000003")
        html = (await (await admin(console)).get("/console")).text
    raw = re.findall(r'<span class="preview">(.*?)</span>', html)
    assert raw[0] == "**my** &lt;b&gt;order&lt;/b&gt;"
    assert raw[1] == "**unbalanced and __half [open](no-close"  # what WhatsApp showed too
    assert raw[2] == "*&lt;script&gt;alert(1)&lt;/script&gt;* x (javascript:alert(1))"
    assert "<script>alert" not in html and "<b>order" not in html


# ---------------------------------------------------------------------------------------------
# Events after the message that caused them


async def test_asked_for_a_person_sits_after_the_message_that_asked(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        await console.write("Hello", name="Ana")
        conversation = await console.write("/human", name="Ana")
        await put(console, conversation, ConversationState.OPERATOR)
        await console.write("Are you there?", name="Ana")
        fakes.gemini_queue.append(transfer("wants a refund"))
        other = await console.write("I want my money back", name="Bia", wa_id="5511900002222")
        ana = await transcript(console.store, await console.conversation(conversation))
        bia = await transcript(console.store, await console.conversation(other))
        html = (await (await admin(console)).get(f"/console/conversations/{other}")).text
    assert [(e.author, e.text) for e in ana] == [
        ("user", "Hello"),
        ("assistant", "You said: Hello"),
        ("user", "/human"),
        ("assistant", ana[3].text),  # the handoff reply
        ("event", "Asked for a person: asked with the handoff command"),
        ("event", "Taken over"),
        ("user", "Are you there?"),
    ]
    assert [(e.author, e.text) for e in bia] == [
        ("user", "I want my money back"),
        ("assistant", bia[1].text),
        ("event", "Asked for a person: wants a refund"),
    ]
    assert [e.at for e in ana] == sorted(e.at for e in ana)  # the times agree with the order
    text = visible_text(html)
    assert text.index("I want my money back") < text.index("Asked for a person: wants a refund")


# ---------------------------------------------------------------------------------------------
# Usage with nothing yet


async def test_usage_says_plainly_when_there_is_nothing_yet(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        client = await admin(console)
        empty = (await client.get("/console/usage")).text
        await console.write("Hello", name="Ana")
        used = (await client.get("/console/usage")).text
    assert "No usage yet: nothing was received or spent in the last 30 days." in empty
    assert "<tbody>" not in empty and 'id="usage-data"' not in empty and "usage.js" not in empty
    assert "Today's budget" in empty and "No daily budget set" in empty  # still said
    assert "No usage yet" not in used
    assert len(re.findall(r'<tr class="day', used)) == 30
    assert "The table scrolls sideways" in used
    assert re.search(r'<div class="table-scroll" role="region"[^>]*tabindex="0"', used)
