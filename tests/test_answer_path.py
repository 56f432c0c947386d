"""The answer path over ASGI: a message read, answered by the faked Gemini and recorded."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from helpers import (
    GEMINI_API_KEY,
    PHONE_NUMBER_ID,
    TEXT_ID,
    WHATSAPP_TOKEN,
    Harness,
    conversation,
    count_inbox,
    load_payload,
    text_payload,
)
from respx_upstreams import gemini_answer

from domain.types import MessageState
from language.replies import Reply, reply_text

# --- The answer path ------------------------------------------------------------------------


async def test_text_message_is_read_answered_and_recorded(harness: Harness) -> None:
    harness.fakes.gemini_queue.append(gemini_answer("It comes in **blue** and _green_."))
    response = await harness.post(load_payload("text"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "recorded": 1}
    await harness.settle()

    assert harness.fakes.read_receipts() == [
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": TEXT_ID,
            "typing_indicator": {"type": "text"},
        }
    ]
    gemini = harness.fakes.gemini_bodies()
    assert len(gemini) == 1
    instruction = gemini[0]["systemInstruction"]["parts"][0]["text"]
    assert instruction.startswith("You are the test shop's assistant.\n\nNow at the business: ")
    assert gemini[0]["contents"] == [
        {"role": "user", "parts": [{"text": "Does it come in another color?"}]}
    ]
    request = harness.fakes.gemini_calls[0]
    assert request.headers["x-goog-api-key"] == GEMINI_API_KEY
    assert GEMINI_API_KEY not in str(request.url)
    assert "/models/gemini-3.8-flash:generateContent" in str(request.url)
    assert harness.fakes.sent() == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "text",
            "text": {"body": "It comes in *blue* and _green_.", "preview_url": False},
        }
    ]
    assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.DONE


async def test_graph_calls_carry_the_bearer_token(harness: Harness) -> None:
    await harness.post(load_payload("text"))
    await harness.settle()
    calls = harness.fakes.router.calls
    graph = [c.request for c in calls if c.request.url.host == "graph.test"]
    assert graph and all(r.headers["authorization"] == f"Bearer {WHATSAPP_TOKEN}" for r in graph)
    gemini = [c.request for c in calls if c.request.url.host == "gemini.test"]
    assert gemini and all("authorization" not in r.headers for r in gemini)


async def test_webhook_answers_before_gemini_is_called(harness: Harness) -> None:
    gate = asyncio.Event()

    async def slow_gemini(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return gemini_answer("done")

    harness.fakes.gemini_queue.append(slow_gemini)
    response = await asyncio.wait_for(harness.post(load_payload("text")), timeout=5)
    assert response.status_code == 200
    assert harness.fakes.sent() == []  # the reply can only come after the 200
    gate.set()
    await harness.settle()
    assert [m["text"]["body"] for m in harness.fakes.sent()] == ["done"]


async def test_batched_body_every_message_answered_to_its_sender(harness: Harness) -> None:
    response = await harness.post(load_payload("batch"))
    assert response.status_code == 200
    await harness.settle()
    sent = {(m["to"], m["text"]["body"]) for m in harness.fakes.sent()}
    assert sent == {
        ("16505551234", "You said: Hi there"),
        ("233245551111", "You said: What are your opening hours?"),
        ("5511955551234", "You said: Olá! Vocês entregam em Recife?"),
    }
    assert len(harness.fakes.read_receipts()) == 3


async def test_concurrent_duplicate_deliveries_give_one_answer(harness: Harness) -> None:
    payload = load_payload("text")
    responses = await asyncio.gather(*(harness.post(payload) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    await harness.settle()
    assert len(harness.fakes.gemini_calls) == 1
    assert len(harness.fakes.sent()) == 1


async def test_later_redelivery_is_not_answered_again(harness: Harness) -> None:
    await harness.post(load_payload("text"))
    await harness.settle()
    for _ in range(3):
        response = await harness.post(load_payload("text"))
        assert response.status_code == 200
        assert response.content == b'{"status":"ok","recorded":0}'
    await harness.settle()
    assert len(harness.fakes.gemini_calls) == 1
    assert len(harness.fakes.sent()) == 1


async def test_status_events_are_logged_never_answered(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await harness.post(load_payload("statuses"))
    assert response.status_code == 200
    await harness.settle()
    assert harness.fakes.graph_calls == []
    assert harness.fakes.gemini_calls == []
    assert await count_inbox(harness) == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "main"]
    assert sum("status " in m for m in messages) == 4
    assert any("status failed" in m and "131047" in m for m in messages)


async def test_events_for_another_phone_number_id_are_ignored(harness: Harness) -> None:
    response = await harness.post(load_payload("other_number"))
    assert response.status_code == 200
    await harness.settle()
    assert await count_inbox(harness) == 0
    assert harness.fakes.graph_calls == []


async def test_unknown_and_unsupported_kinds_get_a_polite_reply(harness: Harness) -> None:
    await harness.post(load_payload("unsupported"))
    await harness.settle()
    assert harness.fakes.gemini_calls == []
    assert [m["text"]["body"] for m in harness.fakes.sent()] == [
        reply_text(Reply.UNSUPPORTED, "en")
    ] * 2


async def test_reaction_gets_no_reply(harness: Harness) -> None:
    await harness.post(load_payload("reaction"))
    await harness.settle()
    assert harness.fakes.graph_calls == []
    assert await harness.services.store.inbox.state_of("wamid.reaction-1") == MessageState.DONE


async def test_business_scoped_user_id_is_answered_and_keys_the_conversation(
    harness: Harness,
) -> None:
    await harness.post(load_payload("bsuid"))
    await harness.settle()
    assert [m["to"] for m in harness.fakes.sent()] == ["US.13491208655302741918"]
    history = await harness.services.store.conversations.history(
        conversation("US.13491208655302741918"), 10, 10_000
    )
    assert [t.role for t in history] == ["user", "model"]


async def test_phone_number_id_of_settings_is_used_in_the_send_path(harness: Harness) -> None:
    await harness.post(load_payload("text"))
    await harness.settle()
    urls = {
        str(c.request.url) for c in harness.fakes.router.calls if c.request.url.host == "graph.test"
    }
    assert urls == {f"https://graph.test/v25.0/{PHONE_NUMBER_ID}/messages"}


async def test_an_unexpected_error_closes_the_row_and_the_service_goes_on(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from answering import question

    def broken(text: str) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(question, "markdown_to_whatsapp", broken)
    await harness.post(text_payload("first", message_id="wamid.e1"))
    await harness.settle()
    assert await harness.services.store.inbox.state_of("wamid.e1") == MessageState.FAILED
    monkeypatch.undo()
    await harness.post(text_payload("second", message_id="wamid.e2"))
    await harness.settle()
    assert [m["text"]["body"] for m in harness.fakes.sent()] == ["You said: second"]
