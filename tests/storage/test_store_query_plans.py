"""Query plans: finding and claiming work uses the inbox's indexes, never a scan of kept rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update
from store_support import LEASE, msg, plans_of

from domain.types import MessageState
from storage.schema import inbox
from storage.store import Store

# ---------------------------------------------------------------------------------------------
# Query plans: finding work must not read the finished rows the inbox keeps for 7 days


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
        [ready] = await plans_of(store, lambda: store.inbox.claimable(10))
        [claim] = await plans_of(
            store, lambda: store.inbox.claim_many([(1991, "x"), (1992, "y")], "w2", LEASE)
        )
    finally:
        await store.close()
    for plan in (ready, claim):
        assert not [step for step in plan if step.startswith("SCAN")], plan
    assert any("ix_inbox_state_id" in step for step in ready), ready
    by_conversation = "ix_inbox_conversation_state (conversation_key=? AND state=?)"
    assert any(by_conversation in step for step in ready), ready
