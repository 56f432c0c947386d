"""`Database.rows`: a kept statement's rows as SQLAlchemy gives them, on SQLite past its
execution context (compiled once, lists expanded), on PostgreSQL through it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, literal, select
from store_support import msg

from storage.schema import inbox, rate_notices
from storage.store import Store

# Fixed values and a fixed list inside the statement, named values given at each run.
TEXTS_OF = (
    select(inbox.c.message_id, inbox.c.text, literal(1.5).label("weight"))
    .where(
        inbox.c.conversation_key == bindparam("key"),
        inbox.c.kind.in_(["text", "audio"]),
        inbox.c.attempts >= 0,
    )
    .order_by(inbox.c.id)
)
# A list given at each run, of any length.
COUNT_OF = select(func.count()).where(inbox.c.message_id.in_(bindparam("ids", expanding=True)))
NOTICE = insert(rate_notices).values(
    conversation_key=bindparam("key"), window="minute", notified_at=bindparam("at")
)


async def through_sqlalchemy(store: Store, statement: Any, parameters: dict[str, Any]) -> list[Any]:
    async with store.engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(statement, parameters)]


async def test_a_statements_rows_are_those_sqlalchemy_gives(store: Store) -> None:
    await store.recorder.record([msg("wamid.a", body="one"), msg("wamid.b", body="two")])
    [first] = await store.recorder.record([msg("wamid.c", user="16505559999")])
    key = "106540352242922:16505551234"
    rows = [tuple(row) for row in await store.db.rows(TEXTS_OF, {"key": key})]
    assert rows == [("wamid.a", "one", 1.5), ("wamid.b", "two", 1.5)]
    assert rows == await through_sqlalchemy(store, TEXTS_OF, {"key": key})
    assert first == "wamid.c"
    for ids, expected in ((["wamid.a"], 1), (["wamid.a", "wamid.c", "wamid.x"], 2), ([], 0)):
        assert [tuple(r) for r in await store.db.rows(COUNT_OF, {"ids": ids})] == [(expected,)]


async def test_a_statement_without_rows_runs_and_gives_none(store: Store) -> None:
    assert await store.db.rows(NOTICE, {"key": "k", "at": 12.5}) == []
    rows = await through_sqlalchemy(store, select(rate_notices), {})
    assert rows == [("k", "minute", 12.5)]


async def test_every_statement_run_is_seen_while_watched(store: Store) -> None:
    seen: list[str] = []
    with store.db.watched(lambda sql, _, __: seen.append(sql.split()[0].upper())):
        await store.recorder.record([msg("wamid.w")])  # on SQLite, on the driver
        await store.db.rows(COUNT_OF, {"ids": ["wamid.w"]})
        await through_sqlalchemy(store, select(inbox.c.id), {})
    await store.db.rows(COUNT_OF, {"ids": ["wamid.w"]})  # no longer watched
    assert seen == ["INSERT", "SELECT", "SELECT"]
