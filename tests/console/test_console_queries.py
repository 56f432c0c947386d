"""The store's queries the console's pages call, on SQLite and on PostgreSQL: the list (newest
first, by business, state and search), a transcript, and the Usage page's days; the rows put
there through the store's own methods, in the order answering calls them."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from console_apps import customer_message
from helpers import PHONE_NUMBER_ID
from usage_support import add_day

from answering.handoff import HANDOFF_REQUESTED
from answering.operators import TAKEN_OVER
from domain.costs import TokenUse
from domain.types import ConversationState, MessageState, Role, Turn
from storage.states import Conversation
from storage.store import Store
from storage.transcripts import TRANSCRIPT_LIMIT
from storage.usage import Day
from webhook.events import parse_webhook

OTHER = "222222222222222"  # a second business's number id


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


async def answered(
    store: Store, text: str, answer: str = "", sources: tuple[str, ...] = (), **sender: Any
) -> Conversation:
    """A customer's message recorded, claimed, its conversation touched and the message closed
    with its turns (and the answer's, if any): what answering does, through the same methods."""
    [message] = parse_webhook(customer_message(text, **sender)).messages
    await store.recorder.record([message])
    [(row_id, key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, key, "test", 60)
    assert row is not None
    conversation = await store.states.touch(row, message.timestamp)
    turns = [Turn(Role.USER, text)] + ([Turn(Role.MODEL, answer, sources)] if answer else [])
    assert await store.inbox.finish(row.id, "test", MessageState.DONE, new_turns=turns)
    return conversation


async def listed(store: Store, **query: Any) -> list[str]:
    """The conversations' users (their ids) in the order the list shows them."""
    values: dict[str, Any] = {"phone_number_ids": None, "state": None, "search": None}
    found = await store.transcripts.listed(**{**values, **query, "limit": query.get("limit", 50)})
    return [item.conversation.user_id for item in found]


async def test_newest_first_by_business_and_state(store: Store) -> None:
    await answered(store, "first", wa_id="5511900000001")
    second = await answered(store, "second", wa_id="5511900000002", to=OTHER)
    await answered(store, "third", wa_id="5511900000003")
    await answered(store, "first again", wa_id="5511900000001")
    await store.states.change(
        second.conversation_key, ConversationState.WAITING, event=HANDOFF_REQUESTED
    )
    assert await listed(store) == ["5511900000002", "5511900000001", "5511900000003"]
    assert await listed(store, phone_number_ids=[PHONE_NUMBER_ID]) == [
        "5511900000001",
        "5511900000003",
    ]
    assert await listed(store, phone_number_ids=[OTHER]) == ["5511900000002"]
    assert await listed(store, phone_number_ids=[]) == []
    assert await listed(store, state=ConversationState.WAITING) == ["5511900000002"]
    assert await listed(store, state=ConversationState.OPERATOR) == []
    assert await listed(store, limit=1) == ["5511900000002"]


async def test_the_preview_is_the_newest_message_never_an_event(store: Store) -> None:
    conversation = await answered(store, "Do you deliver?", "Yes, within 5 km.", name="Ana")
    await store.states.change(
        conversation.conversation_key, ConversationState.WAITING, event=HANDOFF_REQUESTED
    )
    [item] = await store.transcripts.listed(
        phone_number_ids=None, state=None, search=None, limit=10
    )
    assert item.preview == "Yes, within 5 km."
    assert item.conversation.state == ConversationState.WAITING
    assert item.conversation.profile_name == "Ana"


async def test_search_matches_name_without_case_user_id_and_number(store: Store) -> None:
    await answered(store, "hi", name="Ana Souza", wa_id="5511900001111")
    await answered(store, "hi", name=None, wa_id="5521900002222", user_id="US.1349120865530")
    await answered(store, "hi", name="Carla 100%_sure", wa_id="5531900003333")
    assert await listed(store, search="aNA sOUZA") == ["5511900001111"]
    assert await listed(store, search="US.13491") == ["US.1349120865530"]
    assert await listed(store, search="219000022") == ["US.1349120865530"]  # its wa_id
    assert await listed(store, search="100%_") == ["5531900003333"]
    assert await listed(store, search="%") == ["5531900003333"]  # the user's %, not a wildcard
    assert await listed(store, search="_") == ["5531900003333"]
    assert await listed(store, search="a_a") == []
    assert await listed(store, search="  ") != []  # blank: no search


async def test_a_transcript_oldest_first_with_events_operators_and_sources(store: Store) -> None:
    conversation = await answered(store, "Hello", "Hi! **Welcome**.", ("menu.pdf", "faq.md"))
    key = conversation.conversation_key
    await store.states.change(
        key, ConversationState.WAITING, event=HANDOFF_REQUESTED, detail="asked for a person"
    )
    await store.states.change(key, ConversationState.OPERATOR, event=TAKEN_OVER, operator="ana")
    await store.states.operator_wrote(key, "ana", ["I am here."])
    entries = await store.transcripts.entries(key)
    assert [(e.role, e.text, e.author, e.detail, e.sources) for e in entries] == [
        ("user", "Hello", None, None, ()),
        ("model", "Hi! **Welcome**.", None, None, ("menu.pdf", "faq.md")),
        ("event", HANDOFF_REQUESTED, None, "asked for a person", ()),
        ("event", TAKEN_OVER, "ana", None, ()),
        ("model", "I am here.", "ana", None, ()),
    ]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert await store.transcripts.entries("nobody") == []


async def test_the_customers_line_is_dated_when_it_arrived_the_answer_when_it_was_written(
    store: Store,
) -> None:
    """An answer an hour late (a restart, a slow upstream): the transcript still shows when the
    customer wrote."""
    arrived = time.time() - 3600
    store.recorder.clock = lambda: arrived
    answering = time.time()
    conversation = await answered(store, "Are you open?", "Yes, until 6.")
    user, model = await store.transcripts.entries(conversation.conversation_key)
    assert (user.role, user.at) == ("user", arrived)
    assert model.role == "model" and model.at >= answering


async def test_a_long_transcript_keeps_its_newest_lines(store: Store) -> None:
    conversation = await answered(store, "first")
    key = conversation.conversation_key
    lines = [f"line {i}" for i in range(TRANSCRIPT_LIMIT)]
    await store.states.operator_wrote(key, "ana", lines)
    entries = await store.transcripts.entries(key)
    assert len(entries) == TRANSCRIPT_LIMIT
    assert entries[0].text == "line 0" and entries[-1].text == lines[-1]


async def test_days_sum_the_businesses_asked_for_since_a_day(store: Store) -> None:
    usage = store.usage
    await add_day(usage, 0, PHONE_NUMBER_ID, messages=3, answers=2, prompt_tokens=10, cost_usd=1)
    await add_day(usage, 0, OTHER, messages=2, handoffs=1, output_tokens=5, cost_usd=0.5)
    await add_day(usage, 2, OTHER, messages=1, tts_tokens=7, searches=1, cost_usd=0.25)
    today, two_days_ago = usage.today(), (await usage.days([OTHER], "2000-01-01"))[0].day
    both = await usage.days(None, two_days_ago)
    assert [d.day for d in both] == [two_days_ago, today]
    assert both[1] == Day(today, 5, 2, 1, TokenUse(prompt=10, output=5), 1.5)
    assert await usage.days([PHONE_NUMBER_ID], two_days_ago) == [
        Day(today, 3, 2, 0, TokenUse(prompt=10), 1.0)
    ]
    assert await usage.days([OTHER], today) == [Day(today, 2, 0, 1, TokenUse(output=5), 0.5)]
    assert await usage.days([], two_days_ago) == []
    assert await usage.spent_today() == 1.5
    assert await usage.spent_today([OTHER]) == 0.5


def test_an_empty_day_and_a_sum_of_days() -> None:
    empty = Day("2026-05-01")
    assert (empty.messages, empty.answers, empty.handoffs, empty.cost_usd) == (0, 0, 0, 0.0)
    assert (empty.prompt_tokens, empty.output_tokens, empty.tts_tokens, empty.searches) == (
        0,
        0,
        0,
        0,
    )
    thinking = Day("2026-05-02", 1, 1, 0, TokenUse(prompt=3, output=4, thinking=5, tts=6), 0.25)
    assert thinking.output_tokens == 9  # what Gemini wrote, thinking included
    total = sum([thinking, copy.copy(thinking)], empty)
    assert total == Day(
        "2026-05-01", 2, 2, 0, TokenUse(prompt=6, output=8, thinking=10, tts=12), 0.5
    )
