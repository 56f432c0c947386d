"""The Usage page's figures from the store: each day's counts and cost, and today's budgets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from config import Settings
from console.usage_data import ALL_BUSINESSES, BudgetState, DayUsage
from storage.store import Store
from storage.usage import Day


def _day_usage(day: dt.date, found: Day | None) -> DayUsage:
    if found is None:
        return DayUsage(day, 0, 0, 0, 0, 0, 0, 0, 0.0)
    use = found.use
    return DayUsage(
        day=day,
        messages=found.messages,
        answers=found.answers,
        handoffs=found.handoffs,
        prompt_tokens=use.prompt,
        output_tokens=use.output + use.thinking,
        tts_tokens=use.tts,
        searches=use.searches,
        cost_usd=found.cost_usd,
    )


class StoreUsageData:
    """UsageData over the usage table every instance adds to."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store

    def business_names(self) -> list[str]:
        return self._settings.businesses.names()

    def _numbers(self, businesses: Collection[str] | None) -> list[str] | None:
        """The phone number ids of the named businesses; None (every business, those since
        taken out of the tenants file included) stays None."""
        if businesses is None:
            return None
        named = (self._settings.businesses.named(name) for name in businesses)
        return [business.phone_number_id for business in named if business is not None]

    async def days(self, businesses: Collection[str] | None, since: dt.date) -> list[DayUsage]:
        today = dt.date.fromisoformat(self._store.usage.today())
        found = {
            day.day: day
            for day in await self._store.usage.days(self._numbers(businesses), since.isoformat())
        }
        count = (today - since).days + 1
        every_day = (since + dt.timedelta(days=offset) for offset in range(count))
        return [_day_usage(day, found.get(day.isoformat())) for day in every_day]

    async def budgets(self, businesses: Collection[str] | None) -> list[BudgetState]:
        usage, limit = self._store.usage, self._settings.daily_budget_usd
        spent = await usage.spent_today()
        states = [BudgetState(ALL_BUSINESSES, limit or None, spent, 0 < limit <= spent)]
        for business in self._settings.businesses:
            own = business.daily_budget_usd
            if own <= 0 or (businesses is not None and business.name not in businesses):
                continue
            spent = await usage.spent_today([business.phone_number_id])
            states.append(BudgetState(business.name, own, spent, own <= spent))
        return states

    def user_daily_token_limit(self) -> int:
        return self._settings.user_daily_token_limit
