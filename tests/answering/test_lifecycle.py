"""What happens to stored data over time: the 24-hour window, retention, /reset and /forget."""

from __future__ import annotations

import time

import pytest
from helpers import PHONE_NUMBER_ID, Harness, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer, graph_error
from sqlalchemy import select, update

from domain.types import MessageState
from language.replies import Reply, reply_text
from storage.schema import inbox, turns
from webhook.events import parse_webhook

# The promised limits, written out: WhatsApp's 24-hour reply window and Meta's 7 days of
# redelivery. Never the code's own constants, so that a changed constant fails these tests.
MINUTE = 60
HOUR = 3600
DAY = 24 * HOUR


async def rows_of(harness: Harness) -> list[dict[str, object]]:
    async with harness.services.store.engine.connect() as conn:
        result = await conn.execute(select(inbox).order_by(inbox.c.id))
        return [dict(row._mapping) for row in result]


async def turns_of(harness: Harness) -> list[tuple[str, str, str]]:
    async with harness.services.store.engine.connect() as conn:
        result = await conn.execute(select(turns.c.conversation_key, turns.c.role, turns.c.text))
        return [(r.conversation_key, r.role, r.text) for r in result]


# --- The 24-hour window ---------------------------------------------------------------------


@pytest.mark.parametrize("age", [DAY + MINUTE, 2 * DAY], ids=["24-hours-and-1-minute", "2-days"])
async def test_a_message_older_than_24_hours_is_expired_not_answered(
    harness: Harness, age: int
) -> None:
    written = int(time.time()) - age
    await harness.post(text_payload("still there?", message_id="wamid.old", ts=written))
    await harness.settle()
    assert harness.fakes.gemini_calls == []
    assert harness.fakes.graph_calls == []  # no reply, and no read receipt either
    assert await harness.services.store.inbox.state_of("wamid.old") == MessageState.EXPIRED


async def test_a_message_written_23_hours_50_minutes_ago_is_still_answered(
    harness: Harness,
) -> None:
    written = int(time.time()) - (23 * HOUR + 50 * MINUTE)
    await harness.post(text_payload("hello?", message_id="wamid.recent", ts=written))
    await harness.settle()
    assert [m["text"]["body"] for m in harness.fakes.sent()] == ["You said: hello?"]
    assert await harness.services.store.inbox.state_of("wamid.recent") == MessageState.DONE


async def test_meta_refusing_the_window_marks_the_message_expired(harness: Harness) -> None:
    harness.fakes.send_queue.append(graph_error(400, 131047))
    await harness.post(text_payload("hi", message_id="wamid.window"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 1
    assert await harness.services.store.inbox.state_of("wamid.window") == MessageState.EXPIRED


# --- Retention ----------------------------------------------------------------------------------


async def test_purge_drops_old_turns_and_old_finished_rows_only(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(database_url, history_ttl_days=30)
    async with running_app(settings, fakes) as harness:
        for n in range(3):
            await harness.post(text_payload(f"q{n}", message_id=f"wamid.keep{n}"))
            await harness.settle()
        now = time.time()
        async with harness.services.store.engine.begin() as conn:
            # The first exchange: its turns past the 30-day TTL, its row 9 days old (past
            # Meta's 7 days of redelivery). The second: its row received 6 days 23 hours ago,
            # when Meta may still deliver it again.
            await conn.execute(
                update(turns)
                .where(turns.c.text.in_(["q0", "You said: q0"]))
                .values(created_at=now - 31 * DAY)
            )
            await conn.execute(
                update(inbox)
                .where(inbox.c.message_id == "wamid.keep0")
                .values(received_at=now - 9 * DAY)
            )
            await conn.execute(
                update(inbox)
                .where(inbox.c.message_id == "wamid.keep1")
                .values(received_at=now - (6 * DAY + 23 * HOUR))
            )
        removed = await harness.services.inline_dispatcher.purge()
        assert removed == (2, 1)
        assert [r["message_id"] for r in await rows_of(harness)] == ["wamid.keep1", "wamid.keep2"]
        assert [t[2] for t in await turns_of(harness)] == [
            "q1",
            "You said: q1",
            "q2",
            "You said: q2",
        ]

        # Dedup still holds for the row Meta may still redeliver: it is not answered again.
        response = await harness.post(text_payload("q1", message_id="wamid.keep1"))
        assert response.json() == {"status": "ok", "recorded": 0}
        await harness.settle()
        assert len(fakes.sent()) == 3
        assert len(fakes.gemini_calls) == 3
        assert await harness.services.store.inbox.state_of("wamid.keep1") == MessageState.DONE


async def test_purge_keeps_unanswered_rows_whatever_their_age(harness: Harness) -> None:
    waiting = parse_webhook(text_payload("x", message_id="wamid.waiting")).messages
    await harness.services.store.recorder.record(waiting)
    async with harness.services.store.engine.begin() as conn:
        await conn.execute(
            update(inbox).values(received_at=time.time() - 30 * 86400, state="processing")
        )
    await harness.services.inline_dispatcher.purge()
    assert [r["message_id"] for r in await rows_of(harness)] == ["wamid.waiting"]


# --- /reset and /forget ---------------------------------------------------------------------------


async def test_reset_starts_a_fresh_conversation(harness: Harness) -> None:
    harness.fakes.gemini_queue.append(gemini_answer("We open at nine."))
    await harness.post(text_payload("When do you open?", message_id="wamid.a"))
    await harness.settle()
    await harness.post(text_payload("  /RESET ", message_id="wamid.b"))
    await harness.settle()
    await harness.post(text_payload("Hello again", message_id="wamid.c"))
    await harness.settle()

    bodies = [m["text"]["body"] for m in harness.fakes.sent()]
    assert bodies[1] == reply_text(Reply.RESET, "en")
    assert len(harness.fakes.gemini_calls) == 2  # the command itself never reaches Gemini
    assert harness.fakes.gemini_bodies()[-1]["contents"] == [
        {"role": "user", "parts": [{"text": "Hello again"}]}
    ]


async def test_forget_erases_everything_about_the_user_but_keeps_dedup(harness: Harness) -> None:
    await harness.post(text_payload("My address is 1 Main St", message_id="wamid.f1"))
    await harness.post(text_payload("hi from someone else", message_id="wamid.o1", wa_id="999"))
    await harness.settle()
    await harness.post(text_payload("/forget", message_id="wamid.f2"))
    await harness.settle()

    assert harness.fakes.sent()[-1]["text"]["body"] == reply_text(Reply.FORGET, "en")
    assert harness.fakes.sent()[-1]["to"] == "16505551234"
    assert [t[0] for t in await turns_of(harness)] == [f"{PHONE_NUMBER_ID}:999"] * 2
    dump = repr(await rows_of(harness))
    for trace in ("16505551234", "1 Main St", "/forget"):
        assert trace not in dump
    assert "hi from someone else" in dump

    # A redelivery of a forgotten message is still recognised and not answered again.
    sent_before = len(harness.fakes.sent())
    await harness.post(text_payload("My address is 1 Main St", message_id="wamid.f1"))
    await harness.settle()
    assert len(harness.fakes.sent()) == sent_before
    assert await harness.services.store.inbox.state_of("wamid.f1") == MessageState.DONE


async def test_command_words_and_replies_are_configurable(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(
        database_url, reset_command="#recomeçar", reset_reply="Pronto, conversa nova."
    )
    async with running_app(settings, fakes) as harness:
        await harness.post(text_payload("#Recomeçar", message_id="wamid.pt"))
        await harness.settle()
    assert [m["text"]["body"] for m in fakes.sent()] == ["Pronto, conversa nova."]
    assert fakes.gemini_calls == []


async def test_forget_keeps_messages_sent_after_it(harness: Harness) -> None:
    store = harness.services.store
    later = parse_webhook(text_payload("a new question", message_id="wamid.after")).messages
    await store.recorder.record(later)
    await store.conversations.forget("16505551234")
    dump = repr(await rows_of(harness))
    assert "a new question" in dump and "16505551234" in dump
