"""Tests for store.py: URL mapping, dedup, per-user claims and leases, turns and history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import conversation, load_payload, text_payload
from sqlalchemy import event, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.types import MessageState, Role, Turn
from storage.database import async_database_url
from storage.schema import inbox, turns
from storage.store import Store
from webhook.events import InboundMessage, parse_webhook

LEASE = 60.0


def msg(
    message_id: str, *, user: str = "16505551234", ts: int = 0, body: str = "hi"
) -> InboundMessage:
    [message] = parse_webhook(text_payload(body, message_id=message_id, wa_id=user, ts=ts)).messages
    return message


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


async def claim_next(store: Store, owner: str = "w1", lease: float = LEASE) -> tuple[int, str]:
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, conversation_key, owner, lease)
    assert row is not None
    return row.id, row.message_id


# ---------------------------------------------------------------------------------------------
# URLs and schema


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./data/x.db", "sqlite+aiosqlite:///./data/x.db"),
        ("sqlite:////abs/path/x.db", "sqlite+aiosqlite:////abs/path/x.db"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+asyncpg://u:p@h/db?ssl=require"),
        ("sqlite+aiosqlite:///./data/x.db", "sqlite+aiosqlite:///./data/x.db"),
        ("postgresql+asyncpg://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
    ],
)
def test_async_database_url(url: str, expected: str) -> None:
    assert async_database_url(url) == expected


async def test_open_creates_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "db.sqlite"
    store = await Store.open(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        await store.db.ping()
        assert path.exists()
    finally:
        await store.close()


async def test_create_schema_is_idempotent(store: Store) -> None:
    assert await store.recorder.record([msg("wamid.1")]) == ["wamid.1"]
    await store.db.migrate()
    await store.db.migrate()
    assert await store.inbox.state_of("wamid.1") == MessageState.PENDING


# ---------------------------------------------------------------------------------------------
# Recording


async def test_record_returns_only_new_ids(store: Store) -> None:
    assert await store.recorder.record([msg("wamid.1"), msg("wamid.2")]) == ["wamid.1", "wamid.2"]
    assert await store.recorder.record([msg("wamid.1")]) == []
    assert await store.recorder.record([msg("wamid.2"), msg("wamid.3")]) == ["wamid.3"]
    assert await store.recorder.record([]) == []
    assert await store.inbox.count_unfinished() == 3


async def test_record_same_id_twice_in_one_list(store: Store) -> None:
    assert await store.recorder.record([msg("wamid.1"), msg("wamid.1")]) == ["wamid.1"]
    assert await store.inbox.count_unfinished() == 1


async def test_rows_start_pending_and_unknown_is_none(store: Store) -> None:
    await store.recorder.record([msg("wamid.1")])
    assert await store.inbox.state_of("wamid.1") == MessageState.PENDING
    assert await store.inbox.state_of("wamid.unknown") is None


async def test_claimed_row_carries_the_message(store: Store) -> None:
    [bsuid] = parse_webhook(load_payload("bsuid")).messages
    await store.recorder.record([bsuid])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    assert conversation_key == conversation("US.13491208655302741918")
    row = await store.inbox.claim(row_id, conversation_key, "w1", LEASE)
    assert row is not None
    assert (row.message_id, row.conversation_key, row.recipient) == (
        "wamid.bsuid-1",
        conversation("US.13491208655302741918"),
        "US.13491208655302741918",
    )
    assert (row.kind, row.text) == ("text", "Hi, I found you by username")
    assert row.sent_at == bsuid.timestamp > 0
    assert row.payload["from_user_id"] == "US.13491208655302741918"
    assert (row.attempts, row.reply, row.parts_sent) == (1, None, 0)
    assert await store.inbox.state_of("wamid.bsuid-1") == MessageState.PROCESSING


# ---------------------------------------------------------------------------------------------
# Claims


async def test_claimable_lists_one_row_per_user_the_earliest(store: Store) -> None:
    await store.recorder.record(
        [
            msg("a1", user="A", ts=100),
            msg("b1", user="B", ts=101),
            msg("a2", user="A", ts=102),
            msg("b2", user="B", ts=103),
            msg("c1", user="C", ts=104),
        ]
    )
    listed = await store.inbox.claimable(10)
    assert [key for _, key in listed] == [conversation(u) for u in "ABC"]
    rows = [await store.inbox.claim(row_id, user, "w1", LEASE) for row_id, user in listed]
    assert [r.message_id for r in rows if r] == ["a1", "b1", "c1"]
    assert len(await store.inbox.claimable(1)) == 0  # all three users now busy


async def test_concurrent_webhooks_are_written_together_and_each_gets_its_own_ids(
    store: Store,
) -> None:
    """Group commit: calls made while an INSERT runs share the next one."""
    batches = [
        [msg("a", user="A"), msg("b", user="B")],
        [msg("b", user="B"), msg("c", user="C")],  # "b" again, in the same batch
        [msg("d", user="D")],
    ]
    results = await asyncio.gather(*(store.recorder.record(b) for b in batches))
    assert results == [["a", "b"], ["c"], ["d"]]
    assert await store.recorder.record([msg("a", user="A"), msg("e", user="E")]) == ["e"]
    assert await store.inbox.count_unfinished() == 5


async def test_a_failed_group_write_fails_every_webhook_in_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing may be acknowledged that was not written: each caller sees the error."""

    def database_down() -> object:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(store.db, "write", database_down)
    outcomes = await asyncio.gather(
        store.recorder.record([msg("a")]),
        store.recorder.record([msg("b", user="B")]),
        return_exceptions=True,
    )
    assert [type(o) for o in outcomes] == [ConnectionRefusedError, ConnectionRefusedError]
    monkeypatch.undo()
    assert await store.recorder.record([msg("a"), msg("b", user="B")]) == ["a", "b"]


class SQLState(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def failing_first(store: Store, error: Exception) -> list[int]:
    """Make the store's first write fail with `error`; returns the count of writes begun."""
    real_write, begun = store.db.write, [0]

    @asynccontextmanager
    async def write() -> AsyncIterator[AsyncConnection]:
        begun[0] += 1
        if begun[0] == 1:
            raise error
        async with real_write() as conn:
            yield conn

    store.db.write = write  # type: ignore[method-assign]
    return begun


async def test_an_insert_failed_to_break_a_deadlock_is_tried_again(store: Store) -> None:
    """PostgreSQL fails one of two instances' crossing inserts; the retry writes its rows."""
    begun = failing_first(store, DBAPIError("INSERT", {}, SQLState("40P01")))
    assert await store.recorder.record([msg("a"), msg("b", user="B")]) == ["a", "b"]
    assert begun == [2]
    assert await store.recorder.record([msg("a")]) == []  # written once


async def test_other_database_errors_are_not_retried(store: Store) -> None:
    begun = failing_first(store, DBAPIError("INSERT", {}, SQLState("23514")))
    with pytest.raises(DBAPIError):
        await store.recorder.record([msg("a")])
    assert begun == [1]


async def test_claimable_respects_limit(store: Store) -> None:
    await store.recorder.record([msg(f"m{i}", user=f"U{i}", ts=i + 1) for i in range(5)])
    assert len(await store.inbox.claimable(2)) == 2


async def test_second_claim_of_same_row_loses(store: Store) -> None:
    await store.recorder.record([msg("wamid.1")])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    first = await store.inbox.claim(row_id, conversation_key, "w1", LEASE)
    assert first is not None and first.attempts == 1
    assert await store.inbox.claim(row_id, conversation_key, "w2", LEASE) is None
    assert await store.inbox.state_of("wamid.1") == MessageState.PROCESSING


async def test_users_next_message_waits_until_first_is_finished(store: Store) -> None:
    await store.recorder.record([msg("m1", ts=10), msg("m2", ts=20)])
    first_id, first = await claim_next(store)
    assert first == "m1"
    assert await store.inbox.claimable(10) == []
    ids = await _row_ids(store)
    assert await store.inbox.claim(ids["m2"], conversation("16505551234"), "w2", LEASE) is None
    assert await store.inbox.finish(first_id, "w1", MessageState.DONE) is True
    assert await store.inbox.state_of("m1") == MessageState.DONE
    [(row_id, _)] = await store.inbox.claimable(10)
    assert row_id == ids["m2"]


async def test_failed_message_unblocks_the_next(store: Store) -> None:
    await store.recorder.record([msg("m1", ts=10), msg("m2", ts=20)])
    first_id, _ = await claim_next(store)
    assert await store.inbox.finish(first_id, "w1", MessageState.FAILED, error="LLMError") is True
    assert await store.inbox.state_of("m1") == MessageState.FAILED
    assert (await claim_next(store))[1] == "m2"


async def _row_ids(store: Store) -> dict[str, int]:
    """message id -> row id, read straight from the table (the API hands out ids via claims)."""
    async with store.engine.connect() as conn:
        return {row.message_id: row.id for row in await conn.execute(inbox.select())}


async def test_expired_lease_can_be_taken_over(store: Store) -> None:
    await store.recorder.record([msg("m1")])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    stale = await store.inbox.claim(row_id, conversation_key, "old", -1.0)
    assert stale is not None
    assert await store.inbox.claimable(10) == [(row_id, conversation_key)]
    fresh = await store.inbox.claim(row_id, conversation_key, "new", LEASE)
    assert fresh is not None and fresh.attempts == 2
    assert await store.inbox.save_reply(stale, "old", "stale answer") is None
    assert await store.inbox.mark_parts_sent(row_id, "old", 1) is False
    assert (
        await store.inbox.finish(row_id, "old", MessageState.DONE, new_turns=[Turn(Role.USER, "t")])
        is False
    )
    assert await store.inbox.state_of("m1") == MessageState.PROCESSING
    assert await store.conversations.history(conversation("16505551234"), 10, 1000) == []
    assert await store.inbox.finish(row_id, "new", MessageState.DONE) is True


async def test_live_claim_of_later_message_blocks_a_late_earlier_one(store: Store) -> None:
    await store.recorder.record([msg("later", ts=200)])
    await claim_next(store)
    await store.recorder.record([msg("earlier", ts=100)])  # arrives late, sent earlier
    assert await store.inbox.claimable(10) == []


async def test_saving_the_answer_says_whether_the_user_wrote_again_since(store: Store) -> None:
    await store.recorder.record([msg("m1", ts=100)])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, conversation_key, "w1", LEASE)
    assert row is not None
    await store.recorder.record([msg("other user", ts=200, user="16505559999")])
    await store.recorder.record([msg("sent before", ts=99)])
    assert await store.inbox.save_reply(row, "w1", "first answer") is False
    assert await store.inbox.written_after(row) is False
    await store.recorder.record([msg("m2", ts=101)])
    assert await store.inbox.save_reply(row, "w1", "second answer") is True
    assert await store.inbox.written_after(row) is True


async def test_earlier_timestamp_recorded_later_is_answered_first(store: Store) -> None:
    await store.recorder.record([msg("second", ts=200)])
    await store.recorder.record([msg("first", ts=100)])
    assert (await claim_next(store))[1] == "first"


async def test_save_reply_and_parts_sent_survive_release(store: Store) -> None:
    await store.recorder.record([msg("m1")])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    claimed = await store.inbox.claim(row_id, conversation_key, "w1", LEASE)
    assert claimed is not None
    assert await store.inbox.save_reply(claimed, "w1", "The answer") is False  # nothing since
    assert await store.inbox.mark_parts_sent(row_id, "w1", 2) is True
    assert await store.inbox.release_leases() == 1
    assert await store.inbox.state_of("m1") == MessageState.PENDING
    [(again, conversation_key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(again, conversation_key, "w2", LEASE)
    assert row is not None
    assert (row.reply, row.parts_sent, row.attempts) == ("The answer", 2, 2)


async def test_release_leases_counts_and_frees_only_processing(store: Store) -> None:
    await store.recorder.record([msg("a", user="A"), msg("b", user="B"), msg("c", user="C")])
    ids = await _row_ids(store)
    assert await store.inbox.claim(ids["a"], conversation("A"), "w1", LEASE) is not None
    assert await store.inbox.claim(ids["b"], conversation("B"), "w1", LEASE) is not None
    assert await store.inbox.release_leases() == 2
    assert [await store.inbox.state_of(m) for m in "abc"] == [
        MessageState.PENDING,
        MessageState.PENDING,
        MessageState.PENDING,
    ]
    assert sorted(key for _, key in await store.inbox.claimable(10)) == [
        conversation(u) for u in "ABC"
    ]
    assert await store.inbox.release_leases() == 0


async def test_count_unfinished(store: Store) -> None:
    assert await store.inbox.count_unfinished() == 0
    await store.recorder.record([msg("a", user="A"), msg("b", user="B"), msg("c", user="C")])
    ids = await _row_ids(store)
    await store.inbox.claim(ids["a"], conversation("A"), "w1", LEASE)
    await store.inbox.claim(ids["b"], conversation("B"), "w1", LEASE)
    assert await store.inbox.count_unfinished() == 3  # 1 pending + 2 processing
    assert await store.inbox.finish(ids["b"], "w1", MessageState.DONE)
    assert await store.inbox.count_unfinished() == 2


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


@asynccontextmanager
async def counting_checkouts(store: Store) -> AsyncIterator[list[int]]:
    """How many times the store takes a connection from the engine's pool."""
    checkouts: list[int] = []

    def count(*_: Any) -> None:
        checkouts.append(1)

    event.listen(store.engine.sync_engine, "checkout", count)
    try:
        yield checkouts
    finally:
        event.remove(store.engine.sync_engine, "checkout", count)


async def _answer_one(store: Store, message_id: str, user: str) -> None:
    await store.recorder.record([msg(message_id, user=user)])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, conversation_key, "w1", LEASE)
    assert row is not None
    await store.conversations.history(user, 10, 10_000)
    await store.inbox.save_reply(row, "w1", "answer")
    assert await store.inbox.finish(
        row_id, "w1", MessageState.DONE, new_turns=[Turn(Role.USER, "q"), Turn(Role.MODEL, "a")]
    )


async def test_sqlite_store_does_all_its_work_on_one_kept_connection(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path}/kept.db")
    try:
        async with counting_checkouts(store) as checkouts:
            for k in range(3):
                await _answer_one(store, f"m{k}", "A")
            async with store.db.transaction() as conn:
                await conn.execute(turns.delete())
            # Concurrent work takes turns on it rather than opening a second connection.
            await asyncio.gather(*(store.inbox.count_unfinished() for _ in range(20)))
        assert len(checkouts) == 1
        assert store.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    finally:
        await store.close()
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_sqlite_store_opens_a_fresh_connection_after_an_error(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path}/fresh.db")
    try:
        async with counting_checkouts(store) as checkouts:
            await _answer_one(store, "m1", "A")
            with pytest.raises(DBAPIError):
                async with store.db.transaction() as conn:
                    await conn.exec_driver_sql("SELECT * FROM no_such_table")
            await _answer_one(store, "m2", "A")
        assert len(checkouts) == 2
        assert store.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        assert [
            t.text for t in await store.conversations.history(conversation("A"), 10, 10_000)
        ] == [
            "q",
            "a",
        ] * 2
    finally:
        await store.close()


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


# ---------------------------------------------------------------------------------------------
# Query plans: finding work must not read the finished rows the inbox keeps for 7 days


async def _plans_of(store: Store, work: Callable[[], Awaitable[object]]) -> list[list[str]]:
    """SQLite's plan for each statement `work` makes the store run."""
    statements: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statements.append((args[2], args[3]))  # (conn, cursor, statement, parameters, ...)

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await work()
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
    plans = []
    async with store.engine.connect() as conn:
        for sql, parameters in statements:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
            plans.append([str(tuple(row)[3]) for row in rows])  # (id, parent, -, detail)
    return plans


async def test_finding_and_claiming_work_never_scans_the_inbox(tmp_path: Path) -> None:
    """SQLite as the service runs it (no ANALYZE statistics): the indexes serve both queries."""
    store = await Store.open(f"sqlite:///{tmp_path}/plan.db")
    try:
        await store.recorder.record(
            [msg(f"wamid.{i}", user=f"1650555{i % 50:04d}") for i in range(2000)]
        )
        async with store.engine.connect() as conn:
            # Most of the inbox finished, as in a service that has run for a while.
            await conn.execute(
                update(inbox).where(inbox.c.id <= 1990).values(state=MessageState.DONE)
            )
        [ready] = await _plans_of(store, lambda: store.inbox.claimable(10))
        [claim] = await _plans_of(
            store, lambda: store.inbox.claim_many([(1991, "x"), (1992, "y")], "w2", LEASE)
        )
    finally:
        await store.close()
    for plan in (ready, claim):
        assert not [step for step in plan if step.startswith("SCAN")], plan
    assert any("ix_inbox_state_id" in step for step in ready), ready
    by_conversation = "ix_inbox_conversation_state (conversation_key=? AND state=?)"
    assert any(by_conversation in step for step in ready), ready
