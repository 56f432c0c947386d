"""Turns and history in the store: written once with the answer, oldest first, bounded, per user."""

from __future__ import annotations

import pytest
from helpers import conversation
from store_support import LEASE, claim_next, msg

from domain.types import MessageState, Role, Turn
from storage.schema import turns
from storage.store import Store

# ---------------------------------------------------------------------------------------------
# Turns and history


async def test_finish_writes_turns_and_history_is_oldest_first(store: Store) -> None:
    await store.recorder.record([msg("m1", user="A", ts=1), msg("m2", user="A", ts=2)])
    row_id, _ = await claim_next(store)
    await store.inbox.finish(
        row_id, "w1", MessageState.DONE, new_turns=[Turn(Role.USER, "q1"), Turn(Role.MODEL, "a1")]
    )
    row_id, _ = await claim_next(store)
    await store.inbox.finish(
        row_id, "w1", MessageState.DONE, new_turns=[Turn(Role.USER, "q2"), Turn(Role.MODEL, "a2")]
    )
    assert await store.conversations.history(conversation("A"), 10, 10_000) == [
        Turn(Role.USER, "q1"),
        Turn(Role.MODEL, "a1"),
        Turn(Role.USER, "q2"),
        Turn(Role.MODEL, "a2"),
    ]
    assert await store.conversations.history(conversation("A"), 3, 10_000) == [
        Turn(Role.MODEL, "a1"),
        Turn(Role.USER, "q2"),
        Turn(Role.MODEL, "a2"),
    ]
    assert await store.conversations.history(conversation("B"), 10, 10_000) == []
    assert await store.conversations.history(conversation("A"), 0, 10_000) == []
    assert await store.conversations.history(conversation("A"), 10, 0) == []


async def test_turns_of_a_message_are_added_once_even_if_closing_is_retried(store: Store) -> None:
    """A crash between writing the turns and closing the row: the retry must not repeat them."""
    await store.recorder.record([msg("m1", user="A")])
    row_id, _ = await claim_next(store)
    turns_of_m1 = [Turn(Role.USER, "q1"), Turn(Role.MODEL, "a1")]
    async with store.engine.begin() as conn:  # the state the crash would leave behind
        await conn.execute(
            turns.insert(),
            [
                {
                    "inbox_id": row_id,
                    "conversation_key": conversation("A"),
                    "role": t.role,
                    "text": t.text,
                    "created_at": 1.0,
                }
                for t in turns_of_m1
            ],
        )
    assert await store.inbox.state_of("m1") == MessageState.PROCESSING
    assert await store.inbox.finish(row_id, "w1", MessageState.DONE, new_turns=turns_of_m1)
    assert await store.conversations.history(conversation("A"), 10, 10_000) == [
        Turn(Role.USER, "q1"),
        Turn(Role.MODEL, "a1"),
    ]


async def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    await store.recorder.record([msg("m1", user="A")])
    row_id, _ = await claim_next(store)
    await store.inbox.finish(row_id, "w1", MessageState.DONE, new_turns=[Turn(Role.USER, "q1")])
    with pytest.raises(RuntimeError):
        async with store.db.transaction() as conn:
            await conn.execute(turns.delete())
            raise RuntimeError("boom")
    assert await store.conversations.history(conversation("A"), 10, 10_000) == [
        Turn(Role.USER, "q1")
    ]
    async with store.db.transaction() as conn:  # and the connection is usable afterwards
        await conn.execute(turns.delete())
    assert await store.conversations.history(conversation("A"), 10, 10_000) == []


async def _with_turns(store: Store, user: str, texts: list[str]) -> None:
    """One answered message per (question, answer) pair of `texts`."""
    for index in range(0, len(texts), 2):
        await store.recorder.record([msg(f"{user}-m{index}", user=user, ts=index + 1)])
        [(row_id, conversation_key)] = await store.inbox.claimable(10)
        assert await store.inbox.claim(row_id, conversation_key, "w1", LEASE) is not None
        pair = [
            Turn(r, t)
            for r, t in zip([Role.USER, Role.MODEL], texts[index : index + 2], strict=False)
        ]
        assert await store.inbox.finish(row_id, "w1", MessageState.DONE, new_turns=pair)


async def test_history_char_bound_bites_before_turn_bound(store: Store) -> None:
    x, y, z, w = "x" * 50, "y" * 50, "z" * 30, "w" * 20
    await _with_turns(store, "A", [x, y, z, w])
    # The turn bound (10) would allow all four; the character bound keeps only the newest.
    assert await store.conversations.history(conversation("A"), 10, 60) == [
        Turn(Role.USER, z),
        Turn(Role.MODEL, w),
    ]
    assert await store.conversations.history(conversation("A"), 10, 99) == [
        Turn(Role.USER, z),
        Turn(Role.MODEL, w),
    ]
    assert await store.conversations.history(conversation("A"), 10, 100) == [
        Turn(Role.MODEL, y),
        Turn(Role.USER, z),
        Turn(Role.MODEL, w),
    ]
    assert await store.conversations.history(conversation("A"), 10, 150) == [
        Turn(Role.USER, x),
        Turn(Role.MODEL, y),
        Turn(Role.USER, z),
        Turn(Role.MODEL, w),
    ]
    assert (
        await store.conversations.history(conversation("A"), 10, 19) == []
    )  # even the newest turn is too long
    assert await store.conversations.history(conversation("A"), 3, 1000) == [
        Turn(Role.MODEL, y),
        Turn(Role.USER, z),
        Turn(Role.MODEL, w),
    ]


async def test_history_is_per_user(store: Store) -> None:
    await _with_turns(store, "A", ["from A", "to A"])
    await _with_turns(store, "B", ["from B"])
    assert await store.conversations.history(conversation("A"), 10, 1000) == [
        Turn(Role.USER, "from A"),
        Turn(Role.MODEL, "to A"),
    ]
    assert await store.conversations.history(conversation("B"), 10, 1000) == [
        Turn(Role.USER, "from B")
    ]
