"""Per-user rate limits over sliding windows, counted from the inbox, shared by every instance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select

from domain.types import RateVerdict
from storage.database import Database
from storage.schema import inbox, rate_notices

_RECEIVED_IN_WINDOW = select(func.count()).where(
    inbox.c.conversation_key == bindparam("conversation_key"),
    inbox.c.received_at > bindparam("window_start"),
    inbox.c.received_at <= bindparam("at"),
)


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window: its name, its length in seconds, and the messages it allows (0: off)."""

    name: str
    seconds: float
    allowed: int


class RateLimits:
    """Whether a user is over a limit, and whether they were told so in this window already."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def check(
        self, conversation_key: str, at: float, windows: Sequence[Window]
    ) -> RateVerdict:
        """`OK`; past a limit: `NOTICE` once per window length, otherwise `SILENT`.

        The windows slide: messages received in the `seconds` up to `at` are counted from
        the inbox, and the notice time is kept in the database, so every instance agrees.
        The notice's upsert decides alone (it only fires once per window), so the counts and
        it need not share a transaction.
        """
        async with self._db.write() as conn:
            for window in windows:
                if window.allowed <= 0:
                    continue
                count = await conn.scalar(
                    _RECEIVED_IN_WINDOW,
                    {
                        "conversation_key": conversation_key,
                        "window_start": at - window.seconds,
                        "at": at,
                    },
                )
                if (count or 0) <= window.allowed:
                    continue
                insert = self._db.insert(rate_notices).values(
                    conversation_key=conversation_key, window=window.name, notified_at=at
                )
                notified = await conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["conversation_key", "window"],
                        set_={"notified_at": at},
                        where=rate_notices.c.notified_at <= at - window.seconds,
                    ).returning(rate_notices.c.conversation_key)
                )
                return RateVerdict.NOTICE if notified.first() else RateVerdict.SILENT
        return RateVerdict.OK

    async def purge(self, before: float) -> int:
        """Delete notices given before `before`; returns how many went."""
        async with self._db.write() as conn:
            result = await conn.execute(
                delete(rate_notices).where(rate_notices.c.notified_at < before)
            )
            return result.rowcount
