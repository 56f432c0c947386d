"""Bursts through the real app (SQLite and PostgreSQL): a user's messages written together go to
Gemini in one request and get one answer; an answer overtaken before any part went out is
dropped; after a part went out the newer message gets its own answer, quoting it; commands are
never delayed; the typing indicator is kept up; two instances answer a burst once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from helpers import Harness, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer

import answering.bursts
from domain.types import ConversationState, MessageState

DEBOUNCE = 0.4
BURST = ("oi", "queria saber", "quanto custa o pão de queijo?")


def settings_for(database_url: str, **overrides: Any) -> Any:
    values = {"message_debounce_seconds": DEBOUNCE, "message_debounce_max_seconds": 15}
    return make_settings(database_url, **{**values, **overrides})


@pytest.fixture
async def burst_app(database_url: str, fakes: FakeUpstreams) -> AsyncIterator[Harness]:
    async with running_app(settings_for(database_url), fakes) as harness:
        yield harness


def user_parts(body: dict[str, Any]) -> list[str]:
    """The texts of the request's last user turn, in order."""
    return [part["text"] for part in body["contents"][-1]["parts"] if "text" in part]


async def post(harness: Harness, text: str, message_id: str, ts: int) -> None:
    response = await harness.post(text_payload(text, message_id=message_id, ts=ts))
    assert response.status_code == 200


class Gate:
    """A fake Gemini answer that waits until the test lets it go."""

    def __init__(self, text: str = "Custa R$ 5.") -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.text = text

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.entered.set()
        await self.release.wait()
        return gemini_answer(self.text)


async def test_three_messages_a_second_apart_get_one_gemini_request_and_one_answer(
    burst_app: Harness, fakes: FakeUpstreams
) -> None:
    now = int(time.time())
    for k, text in enumerate(BURST):
        await post(burst_app, text, f"wamid.burst-{k}", now + k)
        await asyncio.sleep(0.1)
        assert fakes.gemini_calls == []  # the user is still writing
    # each message is marked read with the typing indicator as soon as it is recorded
    receipts = [r["message_id"] for r in fakes.read_receipts()]
    assert receipts == [f"wamid.burst-{k}" for k in range(3)]
    assert all(r["typing_indicator"] == {"type": "text"} for r in fakes.read_receipts())
    await burst_app.settle()
    [body] = fakes.gemini_bodies()
    assert user_parts(body) == list(BURST)
    [answer] = fakes.sent()
    assert answer["text"]["body"] == "You said: quanto custa o pão de queijo?"
    assert "context" not in answer
    assert len(fakes.read_receipts()) == 3  # not marked again when claimed
    for k in range(3):
        assert await burst_app.services.store.inbox.state_of(f"wamid.burst-{k}") == "done"
    history = await burst_app.services.store.conversations.history(
        f"{burst_app.settings.phone_number_id}:16505551234", 10, 10_000
    )
    assert [t.text for t in history] == [*BURST, "You said: quanto custa o pão de queijo?"]


async def test_a_message_written_while_gemini_answers_drops_that_answer(
    burst_app: Harness, fakes: FakeUpstreams
) -> None:
    gate = Gate("an answer to half a question")
    fakes.gemini_queue.append(gate)
    now = int(time.time())
    await post(burst_app, "oi", "wamid.first", now)
    settling = asyncio.create_task(burst_app.settle())
    await asyncio.wait_for(gate.entered.wait(), 5)
    await post(burst_app, "quanto custa o pão de queijo?", "wamid.second", now + 1)
    gate.release.set()
    await settling
    await burst_app.settle()
    first, second = fakes.gemini_bodies()
    assert user_parts(first) == ["oi"]
    assert user_parts(second) == ["oi", "quanto custa o pão de queijo?"]
    [answer] = fakes.sent()  # the first answer never went out
    assert answer["text"]["body"] == "You said: quanto custa o pão de queijo?"
    store = burst_app.services.store
    assert await store.inbox.state_of("wamid.first") == MessageState.DONE
    assert await store.inbox.state_of("wamid.second") == MessageState.DONE


async def test_a_message_written_after_a_part_went_out_gets_its_own_answer_quoting_it(
    burst_app: Harness, fakes: FakeUpstreams
) -> None:
    sending = asyncio.Event()
    go_on = asyncio.Event()

    async def slow_first_send(request: httpx.Request) -> httpx.Response:
        sending.set()
        await go_on.wait()
        return httpx.Response(200, json={"messages": [{"id": "wamid.out-first"}]})

    fakes.send_queue.append(slow_first_send)
    now = int(time.time())
    await post(burst_app, "oi", "wamid.first", now)
    settling = asyncio.create_task(burst_app.settle())
    await asyncio.wait_for(sending.wait(), 5)
    await post(burst_app, "e o café?", "wamid.second", now + 5)
    go_on.set()
    await settling
    await burst_app.settle()
    first, second = fakes.gemini_bodies()
    assert user_parts(first) == ["oi"]
    assert user_parts(second)[-1] == "e o café?"
    replies = [b for b, _ in fakes.graph_calls if b.get("type") == "text"]
    assert [r["text"]["body"] for r in replies] == ["You said: oi", "You said: e o café?"]
    assert "context" not in replies[0]
    assert replies[1]["context"] == {"message_id": "wamid.second"}


async def test_a_command_is_not_delayed_and_what_came_before_it_is_not_answered(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = settings_for(database_url, message_debounce_seconds=10, poll_interval_seconds=30)
    async with running_app(settings, fakes) as harness:
        now = int(time.time())
        await post(harness, "oi", "wamid.hello", now)
        await post(harness, "/reset", "wamid.reset", now + 1)
        async with asyncio.timeout(2):  # no look for work is asked for but the webhook's
            while not fakes.sent():
                await asyncio.sleep(0.01)
        await harness.settle(timeout=5)
        assert fakes.gemini_calls == []
        [confirmation] = fakes.sent()
        assert "context" not in confirmation
        store = harness.services.store
        assert await store.inbox.state_of("wamid.hello") == MessageState.DONE
        assert await store.inbox.state_of("wamid.reset") == MessageState.DONE


async def test_without_debounce_each_message_is_answered_alone(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with running_app(settings_for(database_url, message_debounce_seconds=0), fakes) as app:
        now = int(time.time())
        await post(app, "oi", "wamid.a", now)
        await post(app, "quanto custa?", "wamid.b", now + 1)
        await app.settle()
        assert [user_parts(b) for b in fakes.gemini_bodies()] == [["oi"], ["quanto custa?"]]
        assert [s["text"]["body"] for s in fakes.sent()] == [
            "You said: oi",
            "You said: quanto custa?",
        ]


async def test_the_typing_indicator_is_renewed_until_the_answer_is_sent(
    burst_app: Harness, fakes: FakeUpstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answering.bursts, "TYPING_RENEW_SECONDS", 0.1)
    gate = Gate()
    fakes.gemini_queue.append(gate)
    await post(burst_app, "oi", "wamid.slow", int(time.time()))
    settling = asyncio.create_task(burst_app.settle())
    await asyncio.wait_for(gate.entered.wait(), 5)
    await asyncio.sleep(0.45)
    renewed = len(fakes.read_receipts())
    assert renewed >= 4  # at arrival, then about every 0.1 s while Gemini thinks
    assert {r["message_id"] for r in fakes.read_receipts()} == {"wamid.slow"}
    gate.release.set()
    await settling
    await asyncio.sleep(0.3)
    assert len(fakes.sent()) == 1
    assert len(fakes.read_receipts()) <= renewed + 1  # stopped once the answer went out


async def test_two_instances_answer_a_burst_once(database_url: str, fakes: FakeUpstreams) -> None:
    settings = settings_for(database_url)
    async with running_app(settings, fakes) as one, running_app(settings, fakes) as two:
        now = int(time.time())
        await post(one, "oi", "wamid.x1", now)
        await post(two, "queria saber", "wamid.x2", now + 1)
        await post(one, "quanto custa o pão de queijo?", "wamid.x3", now + 2)
        await asyncio.gather(one.settle_all(), two.settle_all())
        [body] = fakes.gemini_bodies()
        assert user_parts(body) == list(BURST)
        assert len(fakes.sent()) == 1


async def test_nothing_goes_to_a_customer_whose_conversation_a_person_has(
    burst_app: Harness, fakes: FakeUpstreams
) -> None:
    """Held for a person (an operator's, or waiting for one): no blue ticks, no typing, no
    answer; handed back, the next message is marked read at once again."""
    store = burst_app.services.store
    key = f"{burst_app.settings.phone_number_id}:16505551234"
    now = int(time.time())
    await post(burst_app, "oi", "wamid.before", now)
    await burst_app.settle()
    assert [r["message_id"] for r in fakes.read_receipts()] == ["wamid.before"]
    for k, state in enumerate((ConversationState.OPERATOR, ConversationState.WAITING)):
        await store.states.change(key, state, event="test", operator="maria")
        await post(burst_app, "alguém aí?", f"wamid.held-{k}", now + 1 + k)
        await burst_app.settle()
        assert await store.inbox.state_of(f"wamid.held-{k}") == MessageState.DONE
    assert [r["message_id"] for r in fakes.read_receipts()] == ["wamid.before"]
    assert len(fakes.gemini_calls) == 1 and len(fakes.sent()) == 1
    await store.states.change(key, ConversationState.ASSISTANT, event="test")
    await post(burst_app, "voltei", "wamid.after", now + 5)
    await asyncio.sleep(0.05)  # well inside the burst's wait: marked read at arrival
    assert fakes.read_receipts()[-1]["message_id"] == "wamid.after"
    await burst_app.settle()
    assert len(fakes.sent()) == 2
