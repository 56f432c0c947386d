"""The store: one database and the tables' keepers (recorder, inbox, conversations, delivery...)."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.bursts import Bursts
from storage.conversations import Conversations
from storage.database import Database, create_engine
from storage.delivery import Deliveries
from storage.holds import BudgetHolds
from storage.inbox import Inbox
from storage.knowledge import KnowledgeStores
from storage.media import Media
from storage.operators import Operators
from storage.rate_limits import RateLimits
from storage.recorder import Recorder
from storage.refused_tokens import RefusedTokens
from storage.states import ConversationStates
from storage.transcripts import Transcripts
from storage.usage import Usage

FAILED_SIGN_IN_RETENTION = 86400.0  # seconds; the sign-in throttle looks back 15 minutes


USAGE_KEPT_DAYS = 60  # the console's Usage page shows 30


class Store:
    """Everything the service keeps, over one async engine; opened and closed by the lifespan."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.recorder = Recorder(db)
        self.inbox = Inbox(db)
        self.bursts = Bursts(db, self.inbox)
        self.conversations = Conversations(db)
        self.rate_limits = RateLimits(db)
        self.states = ConversationStates(db)
        self.delivery = Deliveries(db)
        self.media = Media(db)
        self.transcripts = Transcripts(db, self.delivery, self.media)
        self.knowledge = KnowledgeStores(db)
        self.tokens = RefusedTokens(db)
        self.usage = Usage(db)
        self.holds = BudgetHolds(db, self.usage.today)
        self.operators = Operators(db)

    @classmethod
    def over(cls, engine: AsyncEngine) -> Store:
        return cls(Database(engine))

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        migrate: bool | None = True,
        checkpoints: bool = True,
        phone_number_id: str | None = None,
    ) -> Store:
        """Connect, then apply the migrations (`migrate=True`), check that someone else did
        (`False`), or trust the caller that did (`None`: a worker process its web process
        started). `phone_number_id`: see Database.migrate."""
        store = cls.over(create_engine(database_url, checkpoints=checkpoints))
        try:
            if migrate is not None:
                if migrate:
                    await store.db.migrate(phone_number_id=phone_number_id)
                else:
                    await store.db.check_schema()
            store.recorder.prepare()
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def engine(self) -> AsyncEngine:
        return self.db.engine

    @property
    def is_sqlite(self) -> bool:
        return self.db.is_sqlite

    async def purge(self, *, turns_before: float, inbox_before: float) -> tuple[int, int]:
        """Delete old turns and old finished inbox rows (and old notices, expired console
        sessions and day-old failed sign-ins); how many turns and inbox rows went."""
        old_turns = await self.conversations.purge(turns_before)
        old_rows = await self.inbox.purge(inbox_before)
        await self.rate_limits.purge(inbox_before)
        await self.usage.purge(USAGE_KEPT_DAYS)
        now = time.time()
        await self.operators.purge(now=now, failures_before=now - FAILED_SIGN_IN_RETENTION)
        return old_turns, old_rows

    async def close(self) -> None:
        await self.recorder.drain()
        await self.db.close()
