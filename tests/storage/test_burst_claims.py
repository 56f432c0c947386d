"""Tests for storage/bursts.py: when a user's burst is due, one claim for all of it, on a
controllable clock, and two workers racing for one burst."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers import text_payload
from sqlalchemy import update
from store_support import plans_of

from domain.types import MessageState, Role, Turn
from storage.bursts import Claimed
from storage.schema import inbox
from storage.store import Store
from webhook.events import InboundMessage, parse_webhook

LEASE = 60.0
DEBOUNCE = 3.0
LONGEST = 15.0
COMMANDS = ("/reset", "/forget", "/human")
T0 = 1_800_000_000.0


def msg(
    message_id: str, body: str = "hi", *, user: str = "16505551234", ts: int = 0
) -> InboundMessage:
    payload = text_payload(body, message_id=message_id, wa_id=user, ts=ts)
    [message] = parse_webhook(payload).messages
    return message


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


async def record_at(store: Store, at: float, *messages: InboundMessage) -> None:
    store.recorder.clock = lambda: at
    await store.recorder.record(list(messages))


async def due(store: Store, now: float) -> dict[str, float]:
    ready = await store.bursts.ready(
        10, now=now, debounce=DEBOUNCE, longest=LONGEST, commands=COMMANDS
    )
    return {d.conversation_key: d.due for d in ready}


async def claim(store: Store, now: float, owner: str = "w1") -> list[list[Claimed]]:
    keys = [key for key, at in (await due(store, now)).items() if at <= now]
    return await store.bursts.claim(
        keys, owner, LEASE, now=now, debounce=DEBOUNCE, longest=LONGEST, commands=COMMANDS
    )


async def test_a_burst_is_due_debounce_after_its_latest_message_and_claimed_whole(
    store: Store,
) -> None:
    await record_at(store, T0, msg("wamid.1", "oi", ts=10))
    await record_at(store, T0 + 1, msg("wamid.2", "queria saber", ts=11))
    await record_at(store, T0 + 2, msg("wamid.3", "quanto custa o pão de queijo?", ts=12))
    assert list((await due(store, T0 + 2)).values()) == [T0 + 2 + DEBOUNCE]
    assert await claim(store, T0 + 4.9) == []  # not yet: nothing is claimed
    [burst] = await claim(store, T0 + 5)
    assert [c.row.text for c in burst] == ["oi", "queria saber", "quanto custa o pão de queijo?"]
    assert not any(c.quote for c in burst)
    assert await due(store, T0 + 5) == {}  # the user's claim is alive: nothing else to do


async def test_order_is_metas_timestamp_then_arrival(store: Store) -> None:
    await record_at(store, T0, msg("wamid.b", "second", ts=20), msg("wamid.c", "third", ts=20))
    await record_at(store, T0 + 1, msg("wamid.a", "first", ts=19))
    [burst] = await claim(store, T0 + 10)
    assert [c.row.text for c in burst] == ["first", "second", "third"]


async def test_a_user_typing_every_2_s_gets_the_answer_started_by_15_s(store: Store) -> None:
    started = None
    for step in range(31):  # one second at a time for 30 s, a message every 2 s
        now = T0 + step
        if step % 2 == 0:
            await record_at(store, now, msg(f"wamid.{step}", f"part {step}", ts=step))
        if started is None and await claim(store, now):
            started = step
    assert started == 15


async def test_a_message_recorded_between_the_look_and_the_claim_keeps_the_burst_waiting(
    store: Store,
) -> None:
    await record_at(store, T0, msg("wamid.1"))
    assert await due(store, T0 + 3)  # due when looked at ...
    await record_at(store, T0 + 3, msg("wamid.2"))  # ... but the user wrote again
    claimed = await store.bursts.claim(
        ["16505551234"],
        "w1",
        LEASE,
        now=T0 + 3,
        debounce=DEBOUNCE,
        longest=LONGEST,
        commands=COMMANDS,
    )
    assert claimed == []


async def test_a_command_is_due_at_once(store: Store) -> None:
    await record_at(store, T0, msg("wamid.1", "hello"), msg("wamid.2", " /RESET "))
    assert list((await due(store, T0)).values()) == [0.0]
    [burst] = await claim(store, T0)
    assert [c.row.text for c in burst] == ["hello", " /RESET "]


async def test_other_users_wait_on_their_own_clock(store: Store) -> None:
    await record_at(store, T0, msg("wamid.a", user="111"))
    await record_at(store, T0 + 2, msg("wamid.b", user="222"))
    [burst] = await claim(store, T0 + 3)
    assert burst[0].row.message_id == "wamid.a"
    [burst] = await claim(store, T0 + 5)
    assert burst[0].row.message_id == "wamid.b"


async def test_released_messages_come_back_with_the_newer_one_and_keep_the_cap(
    store: Store,
) -> None:
    await record_at(store, T0, msg("wamid.1"))
    [burst] = await claim(store, T0 + 3)
    await record_at(store, T0 + 20, msg("wamid.2"))  # written while the answer was prepared
    assert await store.bursts.release([c.row.id for c in burst], "w1") == 1
    # the first unanswered message is 20 s old: past the cap, due at once
    assert list((await due(store, T0 + 20)).values()) == [T0 + LONGEST]
    [again] = await claim(store, T0 + 20, owner="w2")
    assert [c.row.message_id for c in again] == ["wamid.1", "wamid.2"]


async def test_a_message_that_arrived_while_an_answer_went_out_is_quoted(store: Store) -> None:
    await record_at(store, T0, msg("wamid.1"))
    [burst] = await claim(store, T0 + 3)
    await record_at(store, T0 + 6, msg("wamid.2"))  # after the first part was sent
    store.bursts.clock = lambda: T0 + 7
    finished = await store.bursts.finish(
        [burst[0].row.id],
        "w1",
        MessageState.DONE,
        new_turns=[(burst[0].row.id, Turn(Role.USER, "hi"))],
    )
    assert finished == 1
    [later] = await claim(store, T0 + 10)
    assert [c.quote for c in later] == [True]
    await store.bursts.finish([later[0].row.id], "w1", MessageState.DONE)
    await record_at(store, T0 + 60, msg("wamid.3"))  # long after: nothing to quote
    [last] = await claim(store, T0 + 70)
    assert [c.quote for c in last] == [False]


async def test_two_workers_racing_for_one_burst_claim_it_once(store: Store) -> None:
    await record_at(store, T0, msg("wamid.1", "oi"), msg("wamid.2", "queria saber"))
    for _ in range(5):
        results = await asyncio.gather(
            claim(store, T0 + 3, owner="w1"),
            claim(store, T0 + 3, owner="w2"),
            claim(store, T0 + 3, owner="w3"),
        )
        won = [bursts for bursts in results if bursts]
        if won:
            break
    assert len(won) == 1
    [[burst]] = won
    assert len(burst) == 2
    for owner in ("w1", "w2", "w3"):
        assert await claim(store, T0 + 3, owner=owner) == []


async def test_finish_closes_every_message_of_the_burst_with_their_turns(store: Store) -> None:
    await record_at(store, T0, msg("wamid.1", "oi"), msg("wamid.2", "quanto custa?"))
    [burst] = await claim(store, T0 + 3)
    first, second = (c.row for c in burst)
    closed = await store.bursts.finish(
        [first.id, second.id],
        "w1",
        MessageState.DONE,
        new_turns=[
            (first.id, Turn(Role.USER, "oi")),
            (second.id, Turn(Role.USER, "quanto custa?")),
            (second.id, Turn(Role.MODEL, "R$ 5")),
        ],
    )
    assert closed == 2
    history = await store.conversations.history(first.conversation_key, 10, 10_000)
    assert [(t.role, t.text) for t in history] == [
        (Role.USER, "oi"),
        (Role.USER, "quanto custa?"),
        (Role.MODEL, "R$ 5"),
    ]
    assert await store.inbox.state_of("wamid.1") == MessageState.DONE
    assert await store.bursts.finish([first.id], "w2", MessageState.FAILED) == 0  # not theirs


async def test_finding_and_claiming_bursts_never_scans_the_inbox(tmp_path: Path) -> None:
    """SQLite as the service runs it: the inbox's indexes serve the look and the claim, never
    a scan of the rows kept for redelivery."""
    store = await Store.open(f"sqlite:///{tmp_path}/plan.db")
    try:
        messages = [msg(f"wamid.{i}", user=f"1650555{i % 50:04d}") for i in range(2000)]
        await record_at(store, T0, *messages)
        async with store.engine.connect() as conn:
            await conn.execute(
                update(inbox).where(inbox.c.id <= 1990).values(state=MessageState.DONE)
            )
        [ready] = await plans_of(store, lambda: due(store, T0 + 10))
        _, claimed = await plans_of(store, lambda: claim(store, T0 + 10))
    finally:
        await store.close()
    for plan in (ready, claimed):
        assert not [step for step in plan if step.startswith("SCAN")], plan
