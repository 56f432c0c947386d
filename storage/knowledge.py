"""Where each business's documents live in Gemini File Search, and whether it has any."""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import bindparam, select, text, update

from storage.database import Database
from storage.schema import knowledge_stores

KNOWLEDGE_LOCK = 7_245_100  # PostgreSQL advisory locks: this + a business's number id's CRC

_SEARCHABLE = select(knowledge_stores.c.store_name).where(
    knowledge_stores.c.phone_number_id == bindparam("phone_number_id"),
    knowledge_stores.c.documents > 0,
)


@dataclass(frozen=True, slots=True)
class KnowledgeStore:
    phone_number_id: str
    store_name: str
    documents: int


class KnowledgeStores:
    """The store of each business (by its phone number id), kept for every instance."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._local_locks: dict[str, asyncio.Lock] = {}
        self._register = (
            db.insert(knowledge_stores)
            .values(
                phone_number_id=bindparam("phone_number_id"),
                store_name=bindparam("store_name"),
                documents=0,
                updated_at=bindparam("now"),
            )
            .on_conflict_do_update(
                index_elements=["phone_number_id"],
                set_={"store_name": bindparam("store_name"), "updated_at": bindparam("now")},
            )
        )

    async def get(self, phone_number_id: str) -> KnowledgeStore | None:
        query = select(knowledge_stores).where(
            knowledge_stores.c.phone_number_id == phone_number_id
        )
        async with self._db.connect() as conn:
            found = (await conn.execute(query)).first()
        if found is None:
            return None
        return KnowledgeStore(found.phone_number_id, found.store_name, found.documents)

    async def searchable(self, phone_number_id: str) -> str | None:
        """The store to search while answering: only while it holds documents."""
        rows = await self._db.rows(_SEARCHABLE, {"phone_number_id": phone_number_id})
        return str(rows[0][0]) if rows and rows[0][0] else None

    async def register(self, phone_number_id: str, store_name: str) -> None:
        parameters = {
            "phone_number_id": phone_number_id,
            "store_name": store_name,
            "now": time.time(),
        }
        async with self._db.write() as conn:
            await conn.execute(self._register, parameters)

    async def count(self, phone_number_id: str, documents: int) -> None:
        """How many documents the store holds now (answers search it only when some)."""
        async with self._db.write() as conn:
            await conn.execute(
                update(knowledge_stores)
                .where(knowledge_stores.c.phone_number_id == phone_number_id)
                .values(documents=documents, updated_at=time.time())
            )

    async def any_store(self) -> bool:
        """Whether some business has a store (made by a synchronisation or an upload)."""
        query = select(knowledge_stores.c.store_name).limit(1)
        async with self._db.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def any_documents(self) -> bool:
        query = select(knowledge_stores.c.store_name).where(knowledge_stores.c.documents > 0)
        async with self._db.connect() as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    @contextlib.asynccontextmanager
    async def locked(self, phone_number_id: str) -> AsyncIterator[None]:
        """One synchronisation of a business's store at a time, across instances.

        PostgreSQL: an advisory lock held on a connection of its own for as long as the work
        takes (uploads take minutes; no transaction is kept open). SQLite serves one service,
        whose web process alone synchronises: a lock in the process is enough.
        """
        local = self._local_locks.setdefault(phone_number_id, asyncio.Lock())
        async with local:
            if self._db.is_sqlite:
                yield
                return
            key = KNOWLEDGE_LOCK + zlib.crc32(phone_number_id.encode())
            async with self._db.engine.connect() as conn:
                await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                await conn.commit()
                try:
                    yield
                finally:
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    await conn.commit()
