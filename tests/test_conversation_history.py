"""Conversation history over ASGI: carried into Gemini's request, bounded, kept across a restart."""

from __future__ import annotations

from helpers import TEXT_ID, Harness, load_payload, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer

from domain.types import MessageState

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
