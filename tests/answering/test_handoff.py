"""Handing a conversation to a person: asked for, held, taken over, replied to, handed back."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from console_apps import listed as console_listed
from console_apps import transcript as console_transcript
from helpers import (
    PHONE_NUMBER_ID,
    WHATSAPP_TOKEN,
    Harness,
    conversation,
    make_settings,
    running_app,
    text_payload,
)
from respx_upstreams import FakeUpstreams
from sqlalchemy import update

from answering.operators import OperatorDesk
from console.conversations import TranscriptEntry
from domain.types import ConversationState
from language.replies import Reply, reply_text
from storage.schema import conversations
from storage.states import Conversation

USER = "16505551234"
HOOK = "https://hooks.test/services/T000/B000/XXXX"
HANDOFF_REPLY_EN = (
    "I've asked a person from our team to join. They'll answer you here as soon as they can."
)


def console_settings(database_url: str, **overrides: Any) -> Any:
    values = {
        "console_password": "an-admin-password-for-tests",
        "handoff_webhook_url": HOOK,
        "public_url": "https://assistant.test",
        "business_name": "Padaria Central",
        **overrides,
    }
    return make_settings(database_url, **values)


@pytest.fixture
async def app(database_url: str, fakes: FakeUpstreams) -> AsyncIterator[Harness]:
    async with running_app(console_settings(database_url), fakes) as harness:
        yield harness


@pytest.fixture
def hook(fakes: FakeUpstreams) -> respx.Route:
    return fakes.router.post(HOOK).mock(return_value=httpx.Response(200, text="ok"))


def desk(app: Harness) -> OperatorDesk:
    """What the console's buttons call."""
    return app.client._transport.app.state.console.desk  # type: ignore[attr-defined, no-any-return]


async def listed(app: Harness, search: str | None = None) -> list[Conversation]:
    """The conversations as the console lists them, the most recent first."""
    return await console_listed(app.services.store, search)


async def transcript(app: Harness, conversation: Conversation) -> list[TranscriptEntry]:
    """The conversation's transcript as the console shows it."""
    timeout = app.settings.handoff_timeout_hours
    return await console_transcript(app.services.store, conversation, timeout)


async def say(app: Harness, text: str, message_id: str, wa_id: str = USER) -> None:
    assert (
        await app.post(text_payload(text, message_id=message_id, wa_id=wa_id))
    ).status_code == 200
    await app.settle()


def bodies(app: Harness) -> list[str]:
    return [m["text"]["body"] for m in app.fakes.sent()]


async def state_of(app: Harness, user: str = USER) -> ConversationState:
    [found] = await listed(app, search=user)
    return found.state


def function_call(reason: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "Let me get someone for you."},
                            {
                                "functionCall": {
                                    "name": "transfer_to_human",
                                    "args": {"reason": reason},
                                }
                            },
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 5},
        },
    )


async def test_the_handoff_command_gets_the_reply_a_waiting_state_and_tells_the_team(
    app: Harness, hook: respx.Route
) -> None:
    await say(app, "Hello", "wamid.h1")
    await say(app, "  /HUMAN ", "wamid.h2")  # case and surrounding spaces ignored

    assert bodies(app) == ["You said: Hello", HANDOFF_REPLY_EN]
    assert len(app.fakes.gemini_calls) == 1  # the command never reaches Gemini
    assert await state_of(app) is ConversationState.WAITING
    [found] = await listed(app)
    [notice] = [json.loads(call.request.content) for call in hook.calls]
    assert notice == {
        "text": "Padaria Central: a customer (…1234) is waiting for a person. Open the "
        f"conversation: https://assistant.test/console/conversations/{found.id}"
    }
    assert "Hello" not in notice["text"] and USER not in notice["text"]


async def test_the_conversation_waits_before_the_handoff_row_closes(
    app: Harness, hook: respx.Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the row frees the user's next message for any instance: by then the
    conversation must already wait, or another instance's Gemini answers it."""
    inbox = app.services.store.inbox
    finish = inbox.finish
    states_at_finish: list[ConversationState] = []

    async def finish_and_look(*args: Any, **kwargs: Any) -> bool:
        states_at_finish.append(await state_of(app))
        return await finish(*args, **kwargs)

    monkeypatch.setattr(inbox, "finish", finish_and_look)
    await say(app, "/human", "wamid.w1")

    assert states_at_finish == [ConversationState.WAITING]
    assert len(hook.calls) == 1


async def test_while_waiting_and_with_an_operator_nothing_is_sent_and_gemini_not_called(
    app: Harness, hook: respx.Route
) -> None:
    await say(app, "/human", "wamid.w1")
    sent_before, reads_before = len(app.fakes.sent()), len(app.fakes.read_receipts())
    await say(app, "Is anyone there?", "wamid.w2")
    [found] = await listed(app)
    await desk(app).take_over(found, "ana")
    await say(app, "Hi Ana", "wamid.w3")

    assert len(app.fakes.sent()) == sent_before  # nothing automatic
    assert len(app.fakes.read_receipts()) == reads_before  # no blue ticks before a person reads
    assert app.fakes.gemini_calls == []
    entries = await transcript(app, found)
    assert [(e.author, e.text) for e in entries if e.author == "user"] == [
        ("user", "/human"),
        ("user", "Is anyone there?"),
        ("user", "Hi Ana"),
    ]
    assert [(e.text, e.operator) for e in entries if e.author == "event"] == [
        ("Asked for a person: asked with the handoff command", None),
        ("Taken over", "ana"),
    ]
    assert await state_of(app) is ConversationState.OPERATOR


async def test_gemini_calling_transfer_to_human_hands_the_conversation_over(
    app: Harness, hook: respx.Route
) -> None:
    app.fakes.gemini_queue.append(function_call("asks about a refund policy we do not know"))
    await say(app, "I want my money back", "wamid.g1")

    [request] = app.fakes.gemini_bodies()
    declarations = request["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["transfer_to_human", "offer_choices"]
    declaration = declarations[0]
    assert declaration["parameters"]["properties"]["reason"]["type"] == "STRING"
    assert "transfer_to_human" in request["systemInstruction"]["parts"][0]["text"]
    assert bodies(app) == [HANDOFF_REPLY_EN]  # the reply, not Gemini's own words
    assert await state_of(app) is ConversationState.WAITING
    [found] = await listed(app)
    events = [e.text for e in await transcript(app, found) if e.author == "event"]
    assert events == ["Asked for a person: asks about a refund policy we do not know"]
    assert len(hook.calls) == 1


async def test_without_the_console_there_is_no_handoff_and_no_function(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with running_app(make_settings(database_url), fakes) as app:
        await say(app, "/human", "wamid.n1")
    assert bodies(app) == ["You said: /human"]
    [tool] = app.fakes.gemini_bodies()[0]["tools"]  # INTERACTIVE_REPLIES' function alone
    assert [d["name"] for d in tool["functionDeclarations"]] == ["offer_choices"]
    assert (
        "transfer_to_human"
        not in app.fakes.gemini_bodies()[0]["systemInstruction"]["parts"][0]["text"]
    )


async def test_an_operator_replies_and_gemini_gets_it_back_as_the_assistants_side(
    app: Harness, hook: respx.Route
) -> None:
    await say(app, "/human", "wamid.o1")
    [found] = await listed(app)
    result = await desk(app).reply(found, "ana", "Hi, this is **Ana**. Your order ships today.")
    assert (result.sent, result.reason) == (True, None)
    assert bodies(app)[-1] == "Hi, this is *Ana*. Your order ships today."  # WhatsApp formatting
    assert app.fakes.senders[-1] == (PHONE_NUMBER_ID, WHATSAPP_TOKEN)
    assert await state_of(app) is ConversationState.OPERATOR  # replying takes it over

    await desk(app).hand_back(found, "ana")
    await say(app, "Thanks! When does it arrive?", "wamid.o2")
    assert bodies(app)[-1] == "You said: Thanks! When does it arrive?"
    history = app.fakes.gemini_bodies()[-1]["contents"]
    assert [c["role"] for c in history] == ["user", "model", "user"]
    assert history[1]["parts"][0]["text"].endswith("Hi, this is **Ana**. Your order ships today.")
    entries = await transcript(app, found)
    assert [(e.author, e.operator) for e in entries if e.author == "operator"] == [
        ("operator", "ana")
    ]
    last_event = [(e.text, e.operator) for e in entries if e.author == "event"][-1]
    assert last_event == ("Handed back to the assistant", "ana")


async def test_an_operator_reply_outside_the_24_hour_window_is_refused_and_not_sent(
    app: Harness, hook: respx.Route
) -> None:
    await say(app, "/human", "wamid.x1")
    [found] = await listed(app)
    async with app.services.store.engine.begin() as conn:
        await conn.execute(
            update(conversations).values(last_user_at=time.time() - (24 * 3600 + 60))
        )
    sent_before = len(app.fakes.send_attempts())
    [found] = await listed(app)  # as the console reads it when the button is pressed
    result = await desk(app).reply(found, "ana", "Sorry for the wait!")
    assert result.sent is False
    assert result.reason is not None and "24 hours" in result.reason
    assert len(app.fakes.send_attempts()) == sent_before


async def test_operators_quiet_for_the_timeout_give_the_conversation_back(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = console_settings(database_url, handoff_webhook_url=None, handoff_timeout_hours=24)
    async with running_app(settings, fakes) as app:
        await say(app, "/human", "wamid.t1")
        await say(app, "still there?", "wamid.t2")
        assert len(app.fakes.gemini_calls) == 0
        async with app.services.store.engine.begin() as conn:  # 23 h 50 min: still waiting
            await conn.execute(update(conversations).values(state_since=time.time() - 85_800))
        await say(app, "hello?", "wamid.t3")
        assert len(app.fakes.gemini_calls) == 0
        async with app.services.store.engine.begin() as conn:  # 24 h 1 min: back
            await conn.execute(update(conversations).values(state_since=time.time() - 86_460))
        await say(app, "anyone?", "wamid.t4")
        # Gemini answers, with what the user wrote while waiting as part of the question.
        assert len(app.fakes.gemini_calls) == 1
        assert bodies(app)[-1] == "You said: still there?\n\nhello?\n\nanyone?"
        assert await state_of(app) is ConversationState.ASSISTANT


async def test_the_periodic_sweep_gives_back_quiet_conversations_too(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = console_settings(database_url, handoff_webhook_url=None)
    async with running_app(settings, fakes) as app:
        await say(app, "/human", "wamid.s1")
        async with app.services.store.engine.begin() as conn:
            await conn.execute(update(conversations).values(state_since=time.time() - 86_460))
        await app.services.inline_dispatcher.purge()
        assert await state_of(app) is ConversationState.ASSISTANT


async def test_reset_and_forget_work_in_every_state(app: Harness, hook: respx.Route) -> None:
    await say(app, "My card ends 4242", "wamid.f1")
    await say(app, "/human", "wamid.f2")
    [found] = await listed(app)
    await desk(app).take_over(found, "ana")
    await say(app, "/reset", "wamid.f3")
    assert bodies(app)[-1] == reply_text(Reply.RESET, "en")
    await say(app, "/forget", "wamid.f4")
    assert bodies(app)[-1] == reply_text(Reply.FORGET, "en")
    assert await listed(app) == []
    assert await transcript(app, found) == []
    key = conversation(USER)
    assert await app.services.store.conversations.history(key, 10, 10_000) == []


async def test_two_instances_share_one_conversations_state(
    postgres_database: str, fakes: FakeUpstreams, hook: respx.Route
) -> None:
    settings = console_settings(postgres_database)
    async with running_app(settings, fakes) as first, running_app(settings, fakes) as second:
        await say(first, "/human", "wamid.i1")
        await second.post(text_payload("from the other instance", message_id="wamid.i2"))
        await second.settle_all()
        await first.settle_all()
        assert fakes.gemini_calls == []
        assert [c.state for c in await listed(second)] == [ConversationState.WAITING]
