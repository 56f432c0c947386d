"""Recording inbound messages: only new ids, concurrent webhooks in one write, failures, a retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from helpers import conversation, load_payload
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from store_support import LEASE, msg

from domain.types import MessageState
from storage.prepared import Prepared
from storage.store import Store
from webhook.events import parse_webhook

# ---------------------------------------------------------------------------------------------
# Recording


async def test_record_returns_only_new_ids(store: Store) -> None:
    assert await store.recorder.record([msg("wamid.1"), msg("wamid.2")]) == ["wamid.1", "wamid.2"]
    assert await store.recorder.record([msg("wamid.1")]) == []
    assert await store.recorder.record([msg("wamid.2"), msg("wamid.3")]) == ["wamid.3"]
    assert await store.recorder.record([]) == []
    assert await store.inbox.count_unfinished() == 3


async def test_the_first_webhook_after_opening_the_store_compiles_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: the recorder's INSERT is compiled while the store opens, not in the first
    webhook's time (PostgreSQL's statements go through SQLAlchemy's own cache)."""
    if not store.is_sqlite:
        pytest.skip("SQLite's driver path only")
    compiled: list[Any] = []
    compile_once = Prepared.of.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Prepared], statement: Any, dialect: Any) -> Prepared:
        compiled.append(statement)
        return compile_once(cls, statement, dialect)  # type: ignore[no-any-return]

    monkeypatch.setattr(Prepared, "of", classmethod(counted))
    assert await store.recorder.record([msg("wamid.1")]) == ["wamid.1"]
    assert compiled == []


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

    def database_down(*_: object) -> object:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(store.db, "write", database_down)  # PostgreSQL's path
    monkeypatch.setattr(store.db, "each_returning", database_down)  # SQLite's
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
    real_write, real_each, begun = store.db.write, store.db.each_returning, [0]

    async def each_returning(sql: str, parameter_sets: Sequence[Sequence[object]]) -> list[Any]:
        begun[0] += 1
        if begun[0] == 1:
            raise error
        return await real_each(sql, parameter_sets)

    if store.db.is_sqlite:  # the recorder's SQLite path runs its INSERT on the driver
        store.db.each_returning = each_returning  # type: ignore[method-assign]
        return begun

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
