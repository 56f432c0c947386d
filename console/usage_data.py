"""The Usage page's view of what the assistant did and cost: its types and interface."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

__all__ = ["ALL_BUSINESSES", "BudgetState", "DayUsage", "EmptyUsageData", "UsageData"]

ALL_BUSINESSES = "All businesses"  # the scope of the deployment's own budget


@dataclass(frozen=True, slots=True)
class DayUsage:
    """One UTC day's figures, summed over the businesses asked for."""

    day: date
    messages: int  # the users' messages received
    answers: int  # the assistant's answers
    handoffs: int  # times a person was asked for
    prompt_tokens: int
    output_tokens: int  # thinking included
    tts_tokens: int
    searches: int  # Google Search queries Gemini made
    cost_usd: float  # estimated from the token counts and the prices in the settings


@dataclass(frozen=True, slots=True)
class BudgetState:
    """Today's (UTC) spending against one daily budget."""

    scope: str  # ALL_BUSINESSES (the deployment's) or a business's name
    limit_usd: float | None  # None: no budget
    spent_usd: float  # today's estimated spend in that scope
    biting: bool  # the spend reached the limit: Gemini is not called until tomorrow (UTC)


class UsageData(Protocol):
    """The figures the Usage page shows.

    Access (which operator sees which business) is the console's job, not this one's: the
    console asks only for businesses the operator serves, or for None (all) for the admin.
    """

    def business_names(self) -> list[str]:
        """The businesses whose usage can be shown, in display order."""
        ...

    async def days(self, businesses: Collection[str] | None, since: date) -> list[DayUsage]:
        """One entry per UTC day from `since` to today, days without anything included (as
        zeros), oldest first, summed over `businesses` (None: every business)."""
        ...

    async def budgets(self, businesses: Collection[str] | None) -> list[BudgetState]:
        """Today's budget states: the deployment's first (always, `limit_usd` None when it has
        none), then each of `businesses` (None: every business) that has a budget of its own."""
        ...

    def user_daily_token_limit(self) -> int:
        """The tokens one user may use a day (UTC); 0: no limit."""
        ...


class EmptyUsageData:
    """Nothing used yet and no budget: the page before anything measures usage."""

    def __init__(self, businesses: Iterable[str] = ()) -> None:
        self._businesses = list(businesses)

    def business_names(self) -> list[str]:
        return list(self._businesses)

    async def days(self, businesses: Collection[str] | None, since: date) -> list[DayUsage]:
        today = datetime.now(UTC).date()
        count = (today - since).days + 1
        return [DayUsage(since + timedelta(days=i), 0, 0, 0, 0, 0, 0, 0, 0.0) for i in range(count)]

    async def budgets(self, businesses: Collection[str] | None) -> list[BudgetState]:
        return [BudgetState(ALL_BUSINESSES, None, 0.0, False)]

    def user_daily_token_limit(self) -> int:
        return 0
