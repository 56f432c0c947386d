"""Holds on the daily budgets: an answer's worst case reserved before Gemini is asked, so the
answers under way at once, on every instance and worker process, cannot all overshoot a budget.

A hold counts while its message is being answered: its inbox row `processing`, claimed by the
hold's owner, under a lease that has not run out. Closing the row settles it (the answer's real
cost goes into the day's usage and the hold is deleted, in one write: `storage.usage`); a
worker that crashed leaves a hold that stops counting when its lease runs out, as its claim does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Float, String, and_, bindparam, cast, func, select, text
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect

from domain.types import MessageState
from storage.database import Database
from storage.schema import budget_holds, inbox, usage_days
from storage.usage import ALL

BUDGET_LOCK = 7_245_002  # PostgreSQL advisory lock id: one reservation at a time


@dataclass(frozen=True, slots=True)
class Limits:
    """The daily budgets a message's answer is held against, in USD; 0: none."""

    deployment: float = 0.0  # DAILY_BUDGET_USD
    business: float = 0.0  # the business's own

    @property
    def any(self) -> bool:
        return self.deployment > 0 or self.business > 0


def _spent(business: bool) -> ScalarSelect[float]:
    """Today's recorded spend, of every business or of the one reserving."""
    query = select(func.coalesce(func.sum(usage_days.c.cost_usd), 0.0)).where(
        usage_days.c.day == bindparam("day")
    )
    if business:
        query = query.where(usage_days.c.phone_number_id == bindparam("phone_number_id"))
    return query.scalar_subquery()


def _held(business: bool) -> ScalarSelect[float]:
    """What the other answers under way hold, of every business or of the one reserving."""
    holds = budget_holds
    live: list[ColumnElement[bool]] = [
        inbox.c.owner == holds.c.owner,
        inbox.c.state == MessageState.PROCESSING.value,
        inbox.c.lease_until >= bindparam("now"),
        holds.c.inbox_id != bindparam("inbox_id"),
    ]
    if business:
        live.append(holds.c.phone_number_id == bindparam("phone_number_id"))
    query = (
        select(func.coalesce(func.sum(holds.c.amount_usd), 0.0))
        .select_from(holds.join(inbox, inbox.c.id == holds.c.inbox_id))
        .where(*live)
    )
    return query.scalar_subquery()


def _room(business: bool, limit: str) -> ColumnElement[bool]:
    """The budget still has room: what is spent and held stays below it. The last answer let
    in may then end above it, by at most its own worst case."""
    return _spent(business) + _held(business) < bindparam(limit, type_=Float)


class BudgetHolds:
    """Reserves an answer's worst case against today's budgets, atomically for every instance."""

    def __init__(self, db: Database, today: Callable[[], str]) -> None:
        self._db = db
        self._today = today  # the usage's day (a test moves its clock)
        self._statements: dict[tuple[bool, bool], ReturningInsert[Any]] = {}

    def _reserve(self, deployment: bool, business: bool) -> ReturningInsert[Any]:
        """The reserving statement for this combination of budgets, built once."""
        known = self._statements.get((deployment, business))
        if known is not None:
            return known
        rooms = [_room(False, "deployment")] if deployment else []
        rooms += [_room(True, "business")] if business else []
        values = select(
            cast(bindparam("inbox_id"), BigInteger),
            cast(bindparam("owner"), String),
            cast(bindparam("phone_number_id"), String),
            cast(bindparam("amount"), Float),
            cast(bindparam("now"), Float),
        ).where(and_(*rooms))
        columns = ["inbox_id", "owner", "phone_number_id", "amount_usd", "held_at"]
        insert = self._db.insert(budget_holds).from_select(columns, values)
        statement = insert.on_conflict_do_update(
            index_elements=["inbox_id"],
            set_={name: getattr(insert.excluded, name) for name in columns[1:]},
        ).returning(budget_holds.c.inbox_id)
        self._statements[(deployment, business)] = statement
        return statement

    async def reserve(
        self, inbox_id: int, owner: str, phone_number_id: str, amount_usd: float, limits: Limits
    ) -> str | None:
        """Hold `amount_usd` for this message (claimed by `owner`): None once held, else the
        scope of the budget without room (`ALL`, or the business's number id).

        One statement; on PostgreSQL after an advisory lock in the same transaction, so the
        sums it reads include every hold committed before it (READ COMMITTED would let two
        reservations read the same sums). On SQLite the statement holds the write lock from
        its start: the sums and the insert are one step for every process.
        """
        statement = self._reserve(limits.deployment > 0, limits.business > 0)
        values = self._values(inbox_id, owner, phone_number_id, amount_usd, limits)
        if self._db.is_sqlite:
            async with self._db.write() as conn:
                held = (await conn.execute(statement, values)).first()
        else:
            async with self._db.transaction() as conn:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({BUDGET_LOCK})"))
                held = (await conn.execute(statement, values)).first()
        if held is not None:
            return None
        return await self._without_room(values, limits)

    def _values(
        self, inbox_id: int, owner: str, phone_number_id: str, amount: float, limits: Limits
    ) -> dict[str, object]:
        return {
            "inbox_id": inbox_id,
            "owner": owner,
            "phone_number_id": phone_number_id,
            "amount": amount,
            "now": time.time(),
            "day": self._today(),
            "deployment": limits.deployment,
            "business": limits.business,
        }

    async def _without_room(self, values: dict[str, object], limits: Limits) -> str:
        """Which budget refused (read again after the fact: only for the log and its notice)."""
        if limits.deployment > 0 and limits.business > 0:
            query = select(_room(False, "deployment"))
            async with self._db.connect() as conn:
                if not await conn.scalar(query, values):
                    return ALL
            return str(values["phone_number_id"])
        return ALL if limits.deployment > 0 else str(values["phone_number_id"])

    async def held(self, phone_number_ids: list[str] | None = None) -> float:
        """What the answers under way hold now, of some businesses (None: all of them)."""
        holds = budget_holds
        query = (
            select(func.coalesce(func.sum(holds.c.amount_usd), 0.0))
            .select_from(holds.join(inbox, inbox.c.id == holds.c.inbox_id))
            .where(
                inbox.c.owner == holds.c.owner,
                inbox.c.state == MessageState.PROCESSING.value,
                inbox.c.lease_until >= time.time(),
            )
        )
        if phone_number_ids is not None:
            query = query.where(holds.c.phone_number_id.in_(phone_number_ids))
        async with self._db.connect() as conn:
            return float(await conn.scalar(query) or 0.0)
