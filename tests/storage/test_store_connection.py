"""The SQLite store's connection: all work on one kept connection, a fresh one after an error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import conversation
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from store_support import LEASE, msg

from domain.types import MessageState, Role, Turn
from storage.schema import turns
from storage.store import Store


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
