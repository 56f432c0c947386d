"""Per-user rate limits over sliding windows, counted from the inbox, shared by every instance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select

from domain.types import RateVerdict
from storage.database import Database
from storage.schema import inbox, rate_notices


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window: its name, its length in seconds, and the messages it allows (0: off)."""

    name: str
    seconds: float
    allowed: int


@cache
def _received_in_windows(windows: int) -> Select[*tuple[Any, ...]]:
    """The messages a user sent in each of `windows` windows ending at `at`, in one pass over
    the longest (`window_0`, `window_1`, ...: when each starts)."""
    return select(
        *(
            func.count().filter(inbox.c.received_at > bindparam(f"window_{i}"))
            for i in range(windows)
        )
    ).where(
        inbox.c.conversation_key == bindparam("conversation_key"),
        inbox.c.received_at > bindparam("earliest"),
        inbox.c.received_at <= bindparam("at"),
    )


class RateLimits:
    """Whether a user is over a limit, and whether they were told so in this window already."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def check(
        self, conversation_key: str, at: float, windows: Sequence[Window]
    ) -> RateVerdict:
        """`OK`; past a limit: `NOTICE` once per window length, otherwise `SILENT`.

        The windows slide: messages received in the `seconds` up to `at` are counted from
        the inbox (every window in one statement), and the notice time is kept in the
        database, so every instance agrees.
        The notice's upsert decides alone (it only fires once per window), so the counts and
        it need not share a transaction.
        """
        active = [window for window in windows if window.allowed > 0]
        if not active:
            return RateVerdict.OK
        starts = {f"window_{i}": at - window.seconds for i, window in enumerate(active)}
        parameters = {"conversation_key": conversation_key, "at": at, **starts}
        parameters["earliest"] = min(starts.values())
        [counts] = await self._db.rows(_received_in_windows(len(active)), parameters)
        async with self._db.write() as conn:
            for window, count in zip(active, counts, strict=True):
                if count <= window.allowed:
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
