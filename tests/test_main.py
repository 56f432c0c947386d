"""The app end to end over ASGI: Meta-shaped webhooks in, faked Gemini and Graph calls out."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import (
    APP_SECRET,
    GEMINI_API_KEY,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WHATSAPP_TOKEN,
    Harness,
    conversation,
    load_payload,
    make_settings,
    running_app,
    text_payload,
)
from respx_upstreams import FakeUpstreams, gemini_answer, gemini_error, graph_error

from domain.types import MessageState
from language.replies import Reply, reply_text
from main import MAX_BODY_BYTES, create_app
from markup.whatsapp import markdown_to_whatsapp
from ops.logs import RedactQuerySecrets
from webhook.signature import sign

TEXT_ID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
FALLBACK = "Sorry, I can't answer that right now. Please try again in a little while."


async def count_inbox(harness: Harness) -> int:
    from sqlalchemy import func, select

    from storage.schema import inbox

    async with harness.services.store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(inbox)) or 0)


# --- GET /webhook: the verification handshake ------------------------------------------


async def test_verify_handshake_echoes_challenge_as_plain_text(harness: Harness) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    response = await harness.client.get("/webhook", params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN + "x", "hub.challenge": "1"},
        {},
    ],
    ids=["bad-token", "bad-mode", "no-mode", "no-token", "empty-token", "longer-token", "none"],
)
async def test_verify_handshake_refuses_anything_else(
    harness: Harness, params: dict[str, str]
) -> None:
    response = await harness.client.get("/webhook", params=params)
    assert response.status_code == 403
    assert response.text != "1"


# --- POST /webhook: signature, size, junk -------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "sha256=deadbeef", "sha1=abc", "garbage"],
    ids=["missing", "zeros", "short", "sha1", "garbage"],
)
async def test_unsigned_or_mis_signed_post_is_401_and_nothing_happens(
    harness: Harness, signature: str
) -> None:
    response = await harness.post(load_payload("text"), signature=signature)
    assert response.status_code == 401
    await harness.settle()
    assert await count_inbox(harness) == 0
    assert harness.fakes.graph_calls == []
    assert harness.fakes.gemini_calls == []


async def test_post_signed_with_another_secret_is_401(harness: Harness) -> None:
    response = await harness.post(load_payload("text"), secret="not-the-app-secret")
    assert response.status_code == 401
    assert await count_inbox(harness) == 0


async def test_a_non_json_body_is_refused_401_unless_validly_signed(harness: Harness) -> None:
    """The signature is checked before the body is parsed: junk from anyone but Meta is
    refused outright, never acknowledged as "ignored"."""
    for body in (b"not json at all", b"{", b"", b"[" * 5000):
        for signature in ("", "sha256=" + "0" * 64, sign(body, "not-the-app-secret")):
            response = await harness.post(body, signature=signature)
            assert (response.status_code, response.json()) == (
                401,
                {"error": "invalid signature"},
            ), (body[:10], signature)
        assert (await harness.post(body)).status_code == 200  # the same body, signed


async def test_signature_is_checked_over_raw_bytes_as_meta_sends_them(harness: Harness) -> None:
    # Meta escapes non-ASCII characters; re-serialising would change the bytes and the hash.
    body = json.dumps(text_payload("Olá, café?", message_id="wamid.raw-1")).encode()
    assert b"\\u00e1" in body
    response = await harness.post(body)
    assert response.status_code == 200
    await harness.settle()
    assert harness.fakes.gemini_bodies()[0]["contents"][-1]["parts"][0]["text"] == "Olá, café?"


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b"{", b"", b"[" * 200_000, b'"a string"', b"[1, 2, 3]", b"null"],
    ids=["text", "truncated", "empty", "deeply-nested", "string", "list", "null"],
)
async def test_junk_with_valid_signature_is_200_and_ignored(harness: Harness, body: bytes) -> None:
    response = await harness.post(body)
    assert response.status_code == 200
    await harness.settle()
    assert await count_inbox(harness) == 0
    assert harness.fakes.graph_calls == []


async def test_unknown_shapes_with_valid_signature_are_200(harness: Harness) -> None:
    for payload in (
        {"object": "page", "entry": [{"id": "1", "messaging": []}]},
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"field": "account_update", "value": {"event": "X"}}]}],
        },
        {"object": "whatsapp_business_account", "entry": "not-a-list"},
    ):
        assert (await harness.post(payload)).status_code == 200
    assert await count_inbox(harness) == 0


async def test_body_over_4_mib_is_413_and_not_stored(harness: Harness) -> None:
    payload = text_payload("x" * (MAX_BODY_BYTES + 10), message_id="wamid.huge")
    response = await harness.post(payload)
    assert response.status_code == 413
    assert await count_inbox(harness) == 0


async def test_body_over_limit_without_content_length_is_413(harness: Harness) -> None:
    async def chunks() -> Any:
        for _ in range(5):
            yield b"x" * (1024 * 1024)

    response = await harness.client.post(
        "/webhook", content=chunks(), headers={"X-Hub-Signature-256": "sha256=00"}
    )
    assert response.status_code == 413


async def test_body_just_under_limit_is_accepted(harness: Harness) -> None:
    payload = text_payload("hi", message_id="wamid.big-but-fine")
    payload["padding"] = "y" * (MAX_BODY_BYTES - 1000)
    body = json.dumps(payload).encode()
    assert len(body) <= MAX_BODY_BYTES
    assert (await harness.post(body)).status_code == 200


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


# --- Conversation history ---------------------------------------------------------------------


async def test_history_is_carried_into_the_next_request(harness: Harness) -> None:
    harness.fakes.gemini_queue.append(gemini_answer("We open at nine."))
    await harness.post(text_payload("When do you open?", message_id="wamid.h1"))
    await harness.settle()
    await harness.post(text_payload("And on Sundays?", message_id="wamid.h2"))
    await harness.settle()
    second = harness.fakes.gemini_bodies()[1]["contents"]
    assert second == [
        {"role": "user", "parts": [{"text": "When do you open?"}]},
        {"role": "model", "parts": [{"text": "We open at nine."}]},
        {"role": "user", "parts": [{"text": "And on Sundays?"}]},
    ]


async def test_history_of_other_users_is_not_mixed_in(harness: Harness) -> None:
    await harness.post(text_payload("secret plan", message_id="wamid.u1", wa_id="111"))
    await harness.settle()
    await harness.post(text_payload("hello", message_id="wamid.u2", wa_id="222"))
    await harness.settle()
    assert len(harness.fakes.gemini_bodies()[1]["contents"]) == 1


async def test_history_is_bounded_in_turns(database_url: str, fakes: FakeUpstreams) -> None:
    settings = make_settings(database_url, history_turns=4)
    async with running_app(settings, fakes) as harness:
        for i in range(5):
            await harness.post(text_payload(f"message {i}", message_id=f"wamid.b{i}"))
            await harness.settle()
    last = fakes.gemini_bodies()[-1]["contents"]
    assert len(last) == 5  # 4 turns of history and the new message
    assert last[0]["parts"][0]["text"] == "message 2"


async def test_history_is_bounded_in_characters(database_url: str, fakes: FakeUpstreams) -> None:
    settings = make_settings(database_url, history_max_chars=60)
    async with running_app(settings, fakes) as harness:
        for i in range(4):
            await harness.post(text_payload(f"message number {i}", message_id=f"wamid.c{i}"))
            await harness.settle()
    last = fakes.gemini_bodies()[-1]["contents"]
    history_chars = sum(len(c["parts"][0]["text"]) for c in last[:-1])
    assert 0 < history_chars <= 60


async def test_history_survives_a_restart(database_url: str, fakes: FakeUpstreams) -> None:
    fakes.gemini_queue.append(gemini_answer("Your order ships Monday."))
    async with running_app(make_settings(database_url), fakes) as first:
        await first.post(text_payload("When does my order ship?", message_id="wamid.r1"))
        await first.settle()
    async with running_app(make_settings(database_url), fakes) as second:
        await second.post(text_payload("Which Monday?", message_id="wamid.r2"))
        await second.settle()
    contents = fakes.gemini_bodies()[-1]["contents"]
    assert [c["parts"][0]["text"] for c in contents] == [
        "When does my order ship?",
        "Your order ships Monday.",
        "Which Monday?",
    ]


async def test_pending_messages_of_a_previous_run_are_answered_at_start(
    database_url: str, fakes: FakeUpstreams
) -> None:
    from storage.store import Store
    from webhook.events import parse_webhook

    store = await Store.open(database_url)
    await store.recorder.record(parse_webhook(load_payload("batch")).messages)
    # SQLite hands a dead process's claims back at start; PostgreSQL waits for the lease.
    claimed = await store.inbox.claim(1, "16505551234", "a-process-that-died", 0.5)
    assert claimed is not None
    await store.close()
    async with running_app(make_settings(database_url), fakes) as harness:
        await harness.settle_all()
    assert len(fakes.sent()) == 3


async def test_a_saved_answer_is_resent_without_asking_gemini_again(
    database_url: str, fakes: FakeUpstreams
) -> None:
    from storage.store import Store
    from webhook.events import parse_webhook

    store = await Store.open(database_url)
    await store.recorder.record(parse_webhook(load_payload("text")).messages)
    row = await store.inbox.claim(1, "16505551234", "crashed-owner", 0.5)
    assert row is not None
    await store.inbox.save_reply(row, "crashed-owner", "Saved **answer**")
    await store.close()
    async with running_app(make_settings(database_url), fakes) as harness:
        await harness.settle_all()
        assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.DONE
    assert fakes.gemini_calls == []
    assert [m["text"]["body"] for m in fakes.sent()] == ["Saved *answer*"]


# --- Ordering and concurrency -----------------------------------------------------------------


async def test_one_users_messages_are_answered_in_order(harness: Harness) -> None:
    async def slow_first(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return gemini_answer("answer one")

    harness.fakes.gemini_queue.extend(
        [slow_first, gemini_answer("answer two"), gemini_answer("answer three")]
    )
    payload = load_payload("text")
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    first = messages[0]
    messages[:] = [
        {**first, "id": f"wamid.o{i}", "timestamp": str(1749416383 + i), "text": {"body": f"q{i}"}}
        for i in range(3)
    ]
    await harness.post(payload)
    await harness.settle()
    assert [m["text"]["body"] for m in harness.fakes.sent()] == [
        "answer one",
        "answer two",
        "answer three",
    ]
    asked = [b["contents"][-1]["parts"][0]["text"] for b in harness.fakes.gemini_bodies()]
    assert asked == ["q0", "q1", "q2"]


async def test_messages_are_ordered_by_meta_timestamp_within_a_body(harness: Harness) -> None:
    payload = load_payload("text")
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    first = messages[0]
    messages[:] = [
        {**first, "id": "wamid.late", "timestamp": "1749416390", "text": {"body": "second"}},
        {**first, "id": "wamid.early", "timestamp": "1749416380", "text": {"body": "first"}},
    ]
    await harness.post(payload)
    await harness.settle()
    asked = [b["contents"][-1]["parts"][0]["text"] for b in harness.fakes.gemini_bodies()]
    assert asked == ["first", "second"]


async def test_different_users_are_answered_in_parallel(harness: Harness) -> None:
    both_waiting = asyncio.Event()
    waiting = 0

    async def rendezvous(request: httpx.Request) -> httpx.Response:
        nonlocal waiting
        waiting += 1
        if waiting == 2:
            both_waiting.set()
        await asyncio.wait_for(both_waiting.wait(), timeout=5)
        return gemini_answer("together")

    harness.fakes.gemini_queue.extend([rendezvous, rendezvous])
    await harness.post(text_payload("hi", message_id="wamid.p1", wa_id="111"))
    await harness.post(text_payload("hi", message_id="wamid.p2", wa_id="222"))
    await harness.settle()
    assert sorted(m["to"] for m in harness.fakes.sent()) == ["111", "222"]


async def test_concurrency_is_bounded_by_max_concurrency(
    database_url: str, fakes: FakeUpstreams
) -> None:
    running = peak = 0

    async def counting(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return gemini_answer("ok")

    fakes.gemini_queue.extend([counting] * 12)
    async with running_app(make_settings(database_url, max_concurrency=3), fakes) as harness:
        for i in range(12):
            await harness.post(text_payload("hi", message_id=f"wamid.m{i}", wa_id=str(900 + i)))
        await harness.settle()
    assert len(fakes.sent()) == 12
    assert peak <= 3


async def test_shutdown_lets_an_in_flight_answer_finish(
    database_url: str, fakes: FakeUpstreams
) -> None:
    started = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(0.3)
        return gemini_answer("worth the wait")

    fakes.gemini_queue.append(slow)
    async with running_app(make_settings(database_url), fakes) as harness:
        await harness.post(load_payload("text"))
        await asyncio.wait_for(started.wait(), timeout=5)
    assert [m["text"]["body"] for m in fakes.sent()] == ["worth the wait"]


# --- Failures upstream --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        [gemini_error(500, "INTERNAL")] * 3,
        [gemini_error(429, "RESOURCE_EXHAUSTED")] * 3,
        [gemini_error(400, "INVALID_ARGUMENT")],
        [gemini_error(403, "PERMISSION_DENIED")],
        [httpx.ReadTimeout("slow")] * 3,
        [httpx.ConnectError("refused")] * 3,
        [httpx.Response(200, json={"promptFeedback": {"blockReason": "SAFETY"}})],
        [httpx.Response(200, json={"candidates": [{"finishReason": "SAFETY"}]})],
        [
            httpx.Response(
                200,
                json={"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]},
            )
        ],
        [gemini_answer("")],
        [gemini_answer("---")],
        [httpx.Response(200, text="<html>proxy error</html>")],
    ],
    ids=[
        "500",
        "429",
        "400",
        "403",
        "timeout",
        "connect-error",
        "prompt-blocked",
        "safety-stop",
        "max-tokens-empty",
        "empty-text",
        "empty-after-formatting",
        "malformed",
    ],
)
async def test_gemini_failure_gets_the_user_an_apology(
    harness: Harness, failure: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    harness.fakes.gemini_queue.extend(failure)
    await harness.post(load_payload("text"))
    await harness.settle()
    assert [m["text"]["body"] for m in harness.fakes.sent()] == [FALLBACK]
    assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.FAILED
    assert any("gemini gave no answer" in r.getMessage() for r in caplog.records)


async def test_gemini_retries_transient_errors_then_answers(harness: Harness) -> None:
    harness.fakes.gemini_queue.extend(
        [gemini_error(503, "UNAVAILABLE"), gemini_error(429, "RESOURCE_EXHAUSTED")]
    )
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.gemini_calls) == 3
    assert [m["text"]["body"] for m in harness.fakes.sent()] == [
        "You said: Does it come in another color?"
    ]


async def test_custom_fallback_message_is_used(database_url: str, fakes: FakeUpstreams) -> None:
    fakes.gemini_queue.extend([gemini_error(500, "INTERNAL")] * 3)
    settings = make_settings(database_url, fallback_message="Desculpe, tente mais tarde.")
    async with running_app(settings, fakes) as harness:
        await harness.post(load_payload("text"))
        await harness.settle()
    assert [m["text"]["body"] for m in fakes.sent()] == ["Desculpe, tente mais tarde."]


async def test_graph_5xx_then_success_delivers_once(harness: Harness) -> None:
    harness.fakes.send_queue.extend([graph_error(500, 1, "OAuthException"), graph_error(503, 2)])
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 3
    assert len(harness.fakes.sent()) == 1
    assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.DONE


@pytest.mark.parametrize("code", [130429, 131056, 131000])
async def test_graph_transient_codes_are_retried(harness: Harness, code: int) -> None:
    harness.fakes.send_queue.append(graph_error(400, code))
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 2
    assert len(harness.fakes.sent()) == 1


@pytest.mark.parametrize(
    "status, code, state",
    [
        (400, 131047, MessageState.EXPIRED),
        (401, 190, MessageState.FAILED),
        (400, 100, MessageState.FAILED),
        (400, 131026, MessageState.FAILED),
    ],
)
async def test_graph_permanent_errors_are_not_retried(
    harness: Harness, caplog: pytest.LogCaptureFixture, status: int, code: int, state: str
) -> None:
    caplog.set_level(logging.WARNING)
    harness.fakes.send_queue.append(graph_error(status, code))
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 1
    assert await harness.services.store.inbox.state_of(TEXT_ID) == state
    assert any(f"code={code}" in r.getMessage() for r in caplog.records)


async def test_graph_connection_refused_is_retried_then_marked_failed(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.send_queue.extend([httpx.ConnectError("refused")] * 4)
    async with running_app(make_settings(database_url, graph_max_attempts=4), fakes) as harness:
        await harness.post(load_payload("text"))
        await harness.settle()
        assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.FAILED
    assert len(fakes.send_attempts()) == 4
    assert fakes.sent() == []


async def test_mark_read_failure_does_not_stop_the_answer(harness: Harness) -> None:
    harness.fakes.read_queue.extend([graph_error(400, 100)])
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.sent()) == 1


# --- Formatting and splitting of what is sent -------------------------------------------------


async def test_markdown_answer_is_sent_in_whatsapp_formatting(harness: Harness) -> None:
    answer = "## Colours\n\n* **Blue**: in stock\n* ~~Red~~: sold out\n\nSee [our shop](https://shop.test)."
    harness.fakes.gemini_queue.append(gemini_answer(answer))
    await harness.post(load_payload("text"))
    await harness.settle()
    body = harness.fakes.sent()[0]["text"]["body"]
    assert body == (
        "*Colours*\n\n- *Blue*: in stock\n- ~Red~: sold out\n\nSee our shop (https://shop.test)."
    )


async def test_long_answer_is_split_in_order_within_4096(harness: Harness) -> None:
    paragraphs = [f"Paragraph {i}. " + "Some words here. " * 30 for i in range(20)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) > 10_000
    harness.fakes.gemini_queue.append(gemini_answer(answer))
    await harness.post(load_payload("text"))
    await harness.settle()
    parts = [m["text"]["body"] for m in harness.fakes.sent()]
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert "".join(parts) == markdown_to_whatsapp(answer)
    assert all(p.endswith("\n\n") for p in parts[:-1])  # cut at paragraph boundaries


async def test_a_part_refused_for_good_stops_the_reply_and_fails_the_message(
    harness: Harness,
) -> None:
    answer = "\n\n".join(f"Sentence number {i} is here. " * 20 for i in range(12))
    harness.fakes.gemini_queue.append(gemini_answer(answer))
    harness.fakes.send_queue.extend([httpx.Response(200, json={"messages": [{"id": "a"}]})])
    harness.fakes.send_queue.extend([graph_error(400, 100)])  # second part refused for good
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 2
    assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.FAILED


async def test_split_answer_resumes_after_the_last_part_sent(
    database_url: str, fakes: FakeUpstreams
) -> None:
    """A worker that died after sending part one left the reply and `parts_sent=1` behind."""
    from storage.store import Store
    from webhook.events import parse_webhook

    answer = "\n\n".join(f"Part {n}. " + "word " * 700 for n in range(3))
    store = await Store.open(database_url)
    try:
        await store.recorder.record(parse_webhook(load_payload("text")).messages)
        [(row_id, user_key)] = await store.inbox.claimable(10)
        row = await store.inbox.claim(row_id, user_key, "crashed-owner", 0.5)
        assert row is not None
        assert await store.inbox.save_reply(row, "crashed-owner", answer) is False
        assert await store.inbox.mark_parts_sent(row.id, "crashed-owner", 1)
    finally:
        await store.close()
    async with running_app(make_settings(database_url), fakes) as harness:
        await harness.settle_all()
        assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.DONE
    assert fakes.gemini_calls == []
    sent = [m["text"]["body"] for m in fakes.sent()]
    assert [s.split(".")[0] for s in sent] == ["Part 1", "Part 2"]
    assert "Part 0" not in "".join(sent)
    assert all(m["to"] == "16505551234" for m in fakes.sent())


# --- Logs -------------------------------------------------------------------------------------


async def test_no_secret_phone_number_or_text_in_any_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await harness.client.get(
        "/webhook",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "7"},
    )
    await harness.post(load_payload("batch"))
    await harness.post(load_payload("statuses"))
    await harness.post(load_payload("text"), signature="sha256=bad")
    harness.fakes.gemini_queue.append(gemini_error(500, "INTERNAL"))
    await harness.settle()
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "answered message" in text  # the log is not empty: it speaks in ids and hashes
    for forbidden in (
        VERIFY_TOKEN,
        APP_SECRET,
        WHATSAPP_TOKEN,
        GEMINI_API_KEY,
        "16505551234",
        "233245551111",
        "5511955551234",
        "opening hours",
        "Recife",
    ):
        assert forbidden not in text, forbidden


def every_log_line(caplog: pytest.LogCaptureFixture) -> str:
    """Every record any logger emitted, with its arguments and traceback."""
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records
    )


async def test_a_failed_read_receipt_logs_neither_the_number_nor_the_text(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records reach caplog
    harness.fakes.read_queue.append(graph_error(400, 100))
    payload = text_payload("my parcel number is 55501", message_id="wamid.rr", wa_id="447700900123")
    await harness.post(payload)
    await harness.settle()
    assert [m["to"] for m in harness.fakes.sent()] == ["447700900123"]
    assert harness.fakes.read_receipts() == []
    text = every_log_line(caplog)
    assert "mark_read" in text  # the failure was logged, by hash and code
    for forbidden in ("447700900123", "my parcel number", "55501", "Sheena Nelson"):
        assert forbidden not in text, forbidden


async def test_refused_media_logs_neither_the_number_nor_the_caption(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Too large, corrupt (its hash does not match) and unavailable: each refusal is logged,
    and none of those lines names the sender or repeats what they wrote."""
    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records reach caplog
    fakes = harness.fakes
    senders = {"2001": "447700900201", "2002": "447700900202", "2003": "447700900203"}
    too_large = b"\xff\xd8" + b"x" * harness.settings.max_image_bytes
    fakes.add_media("2001", too_large, "image/jpeg")
    fakes.add_media("2002", b"\xff\xd8 small", "image/jpeg")
    fakes.download_queue.append(httpx.Response(200, content=b"tampered"))  # only 2002 downloads
    # 2003 is unknown to the fake Graph API: its metadata request fails.
    for media_id, wa_id in senders.items():
        payload = load_payload("image")
        value = payload["entry"][0]["changes"][0]["value"]
        value["contacts"][0]["wa_id"] = wa_id
        message = value["messages"][0]
        message.update({"id": f"wamid.media-{media_id}", "from": wa_id})
        message["image"].update({"id": media_id, "caption": f"private caption {media_id}"})
        await harness.post(payload)
    await harness.settle()
    assert fakes.gemini_calls == []
    assert sorted(m["to"] for m in fakes.sent()) == sorted(senders.values())
    text = every_log_line(caplog)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3, refusals
    assert all(reason in text for reason in ("too_large", "corrupt", "unavailable"))
    for forbidden in (*senders.values(), "private caption", "Sheena Nelson"):
        assert forbidden not in text, forbidden


def test_access_log_filter_redacts_the_verify_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            f"/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=9",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactQuerySecrets().filter(record)
    line = record.getMessage()
    assert VERIFY_TOKEN not in line
    assert "hub.verify_token=***" in line
    assert "hub.challenge=9" in line


async def test_health_is_ok(harness: Harness) -> None:
    response = await harness.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_openapi_document_describes_every_route(harness: Harness) -> None:
    """POST /webhook is served by a PlainRoute (no FastAPI handler); it stays documented,
    which Schemathesis in the fault suite depends on."""
    response = await harness.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {path: sorted(operations) for path, operations in paths.items()} == {
        "/health": ["get"],
        "/ready": ["get"],
        "/metrics": ["get"],
        "/webhook": ["get", "post"],
    }
    assert paths["/webhook"]["post"]["operationId"] == "receive_webhook_webhook_post"


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


# --- GET /: the front door ---------------------------------------------------------------


async def front_door(settings: Any, path: str) -> httpx.Response:
    """`path` of an app that was built and not started: the front door needs nothing else."""
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


async def test_the_front_door_says_the_service_runs_and_nothing_about_it(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/a.db", system_prompt="Padaria's assistant")
    response = await front_door(settings, "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "running" in response.text
    assert len(response.text) < 300
    told = response.text.lower()
    for setting_value in (PHONE_NUMBER_ID, "v25.0", "gemini-3", "padaria", "sqlite", "graph.test"):
        assert setting_value not in told
    assert not any(character.isdigit() for character in told)  # no version of anything


async def test_the_front_door_opens_the_console_when_it_is_on(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/a.db", console_password="a-console-secret")
    response = await front_door(settings, "/")
    assert (response.status_code, response.headers["location"]) == (307, "/console")
    slash = await front_door(settings, "/console/")
    assert (slash.status_code, slash.headers["location"]) == (308, "/console")
    off = make_settings(f"sqlite:///{tmp_path}/b.db")
    assert (await front_door(off, "/console/")).status_code == 404
