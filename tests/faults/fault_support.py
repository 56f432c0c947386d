"""What the fault suite's modules share: counting the inbox's rows by state."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from storage.schema import inbox
from storage.store import Store


async def states(store: Store) -> Counter[str]:
    async with store.engine.connect() as conn:
        return Counter((await conn.execute(select(inbox.c.state))).scalars())
