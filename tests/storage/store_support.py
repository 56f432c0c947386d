"""What the store's tests share: a recorded text message, the lease they claim with, claiming
the next row, SQLite's query plans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from helpers import text_payload

from storage.store import Store
from webhook.events import InboundMessage, parse_webhook

LEASE = 60.0


def msg(
    message_id: str, *, user: str = "16505551234", ts: int = 0, body: str = "hi"
) -> InboundMessage:
    [message] = parse_webhook(text_payload(body, message_id=message_id, wa_id=user, ts=ts)).messages
    return message


async def claim_next(store: Store, owner: str = "w1", lease: float = LEASE) -> tuple[int, str]:
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, conversation_key, owner, lease)
    assert row is not None
    return row.id, row.message_id


async def plans_of(store: Store, work: Callable[[], Awaitable[object]]) -> list[list[str]]:
    """SQLite's plan for each statement `work` makes the store run."""
    statements: list[tuple[str, Any]] = []
    with store.db.watched(lambda sql, parameters, _: statements.append((sql, parameters))):
        await work()
    plans = []
    async with store.engine.connect() as conn:
        for sql, parameters in statements:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
            plans.append([str(tuple(row)[3]) for row in rows])  # (id, parent, -, detail)
    return plans
