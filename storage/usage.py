"""Usage per UTC day, kept for every instance: what was asked, answered, and what it cost."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select

from domain.costs import NOTHING_USED, TokenUse
from storage.database import Database
from storage.schema import budget_holds, budget_notices, usage_days, user_days

ALL = "all"  # the scope of the deployment's own budget


def utc_day(at: dt.datetime) -> str:
    """A UTC day as the tables key it: YYYY-MM-DD."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def user_hash(conversation_key: str) -> str:
    """Who a user's daily tokens belong to, without their number: /forget has nothing to
    erase here, and the limit still holds after it."""
    return hashlib.sha256(conversation_key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Day:
    """One day of one or several businesses, summed."""

    day: str
    messages: int = 0  # the users' messages received
    answers: int = 0  # the assistant's answers
    handoffs: int = 0  # times a person was asked for
    use: TokenUse = NOTHING_USED
    cost_usd: float = 0.0  # estimated from the token counts and the prices in the settings

    @property
    def prompt_tokens(self) -> int:
        return self.use.prompt

    @property
    def output_tokens(self) -> int:
        """What Gemini wrote, thinking included."""
        return self.use.output + self.use.thinking

    @property
    def tts_tokens(self) -> int:
        return self.use.tts

    @property
    def searches(self) -> int:
        """Google Search queries Gemini made."""
        return self.use.searches

    @property
    def embedding_tokens(self) -> int:
        """Tokens File Search embedded indexing documents (estimated from their size)."""
        return self.use.embedding

    def __add__(self, other: Day) -> Day:
        """Both days' figures summed, under this one's date (a total's first day)."""
        return Day(
            self.day,
            self.messages + other.messages,
            self.answers + other.answers,
            self.handoffs + other.handoffs,
            self.use + other.use,
            self.cost_usd + other.cost_usd,
        )


_COUNTED = (
    "messages",
    "answers",
    "handoffs",
    "prompt_tokens",
    "output_tokens",
    "thinking_tokens",
    "tts_tokens",
    "searches",
    "embedding_tokens",
    "cost_usd",
)


def _token_values(use: TokenUse) -> dict[str, int]:
    return {
        "prompt_tokens": use.prompt,
        "output_tokens": use.output,
        "thinking_tokens": use.thinking,
        "tts_tokens": use.tts,
        "searches": use.searches,
        "embedding_tokens": use.embedding,
    }


class Usage:
    """Adds each message to its day, and answers what a day (or a user's day) came to."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._db = db
        self.clock = clock  # what "today" is: a test moves it to tomorrow
        add = db.insert(usage_days).values(
            day=bindparam("day"),
            phone_number_id=bindparam("phone_number_id"),
            **{name: bindparam(name) for name in _COUNTED},
        )
        self._add = add.on_conflict_do_update(
            index_elements=["day", "phone_number_id"],
            set_={name: getattr(usage_days.c, name) + bindparam(name) for name in _COUNTED},
        )
        user = db.insert(user_days).values(
            day=bindparam("day"), user_hash=bindparam("user"), tokens=bindparam("tokens")
        )
        self._add_user = user.on_conflict_do_update(
            index_elements=["day", "user_hash"],
            set_={"tokens": user_days.c.tokens + bindparam("tokens")},
        )
        self._settle = delete(budget_holds).where(
            budget_holds.c.inbox_id == bindparam("inbox_id"),
            budget_holds.c.owner == bindparam("owner"),
        )
        self._notice = (
            db.insert(budget_notices)
            .values(day=bindparam("day"), scope=bindparam("scope"))
            .on_conflict_do_nothing(index_elements=["day", "scope"])
            .returning(budget_notices.c.scope)
        )

    def today(self) -> str:
        return utc_day(self.clock())

    async def add(
        self,
        phone_number_id: str,
        conversation_key: str,
        *,
        answered: bool,
        handoff: bool,
        use: TokenUse,
        cost_usd: float,
        per_user: bool,
        settles: tuple[int, str] | None = None,
    ) -> None:
        """One message closed: counted for its business's day, and its tokens for its user's
        day when `per_user` (USER_DAILY_TOKEN_LIMIT is on). `settles`: the message's inbox id
        and owner, whose hold on the budgets (storage/holds.py) this real cost replaces.

        The hold goes after the cost is in: on SQLite (two autocommitted statements) a
        reservation in between sees both, never neither; on PostgreSQL one transaction.
        """
        day = self.today()
        values = {
            "day": day,
            "phone_number_id": phone_number_id,
            "messages": 1,
            "answers": int(answered),
            "handoffs": int(handoff),
            **_token_values(use),
            "cost_usd": cost_usd,
        }
        async with self._db.write() as conn:
            await conn.execute(self._add, values)
            if per_user and use.tokens:
                user = {"day": day, "user": user_hash(conversation_key), "tokens": use.tokens}
                await conn.execute(self._add_user, user)
            if settles is not None:
                await conn.execute(self._settle, {"inbox_id": settles[0], "owner": settles[1]})

    async def indexed(self, phone_number_id: str, use: TokenUse, cost_usd: float) -> None:
        """Documents File Search indexed for a business: their tokens and cost in its day."""
        values = {
            "day": self.today(),
            "phone_number_id": phone_number_id,
            "messages": 0,
            "answers": 0,
            "handoffs": 0,
            **_token_values(use),
            "cost_usd": cost_usd,
        }
        async with self._db.write() as conn:
            await conn.execute(self._add, values)

    async def spent_today(self, phone_number_ids: Collection[str] | None = None) -> float:
        """Today's estimated spend in USD, of some businesses (None: all of them)."""
        query = select(func.coalesce(func.sum(usage_days.c.cost_usd), 0.0)).where(
            usage_days.c.day == self.today()
        )
        if phone_number_ids is not None:
            query = query.where(usage_days.c.phone_number_id.in_(list(phone_number_ids)))
        async with self._db.connect() as conn:
            return float(await conn.scalar(query) or 0.0)

    async def user_tokens_today(self, conversation_key: str) -> int:
        query = select(user_days.c.tokens).where(
            user_days.c.day == self.today(), user_days.c.user_hash == user_hash(conversation_key)
        )
        async with self._db.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def first_bite(self, scope: str) -> bool:
        """True the first time today a budget of this scope bites (every instance agrees)."""
        async with self._db.write() as conn:
            found = await conn.execute(self._notice, {"day": self.today(), "scope": scope})
            return found.first() is not None

    async def days(self, phone_number_ids: Collection[str] | None, since: str) -> list[Day]:
        """Each day from `since` that has anything, oldest first, summed over the businesses
        (None: every one, those since taken out of the tenants file included); a day without
        anything is `Day(day)`."""
        sums = [func.sum(getattr(usage_days.c, name)).label(name) for name in _COUNTED]
        query = select(usage_days.c.day, *sums).where(usage_days.c.day >= since)
        if phone_number_ids is not None:
            query = query.where(usage_days.c.phone_number_id.in_(list(phone_number_ids)))
        query = query.group_by(usage_days.c.day).order_by(usage_days.c.day)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Day(
                day=row.day,
                messages=int(row.messages),
                answers=int(row.answers),
                handoffs=int(row.handoffs),
                use=TokenUse(
                    int(row.prompt_tokens),
                    int(row.output_tokens),
                    int(row.thinking_tokens),
                    int(row.tts_tokens),
                    int(row.searches),
                    int(row.embedding_tokens),
                ),
                cost_usd=float(row.cost_usd),
            )
            for row in rows
        ]

    async def purge(self, keep_days: int) -> None:
        """Forget the days the Usage page no longer shows, and per-user counts and notices
        of days before yesterday (only today's are ever read)."""
        now = self.clock()
        oldest = utc_day(now - dt.timedelta(days=keep_days))
        yesterday = utc_day(now - dt.timedelta(days=1))
        stale = time.time() - 86400  # a hold counts only under a live lease anyway
        async with self._db.write() as conn:
            await conn.execute(delete(budget_holds).where(budget_holds.c.held_at < stale))
            await conn.execute(delete(usage_days).where(usage_days.c.day < oldest))
            await conn.execute(delete(user_days).where(user_days.c.day < yesterday))
            await conn.execute(delete(budget_notices).where(budget_notices.c.day < yesterday))
