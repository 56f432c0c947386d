"""An in-memory UsageData for the console's tests: figures and budgets a test sets, and a record
of which businesses the page asked for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from console.usage_data import ALL_BUSINESSES, BudgetState, DayUsage

FIGURES = [f.name for f in fields(DayUsage) if f.name != "day"]


@dataclass(frozen=True, slots=True)
class Asked:
    """One call of the page's: which method, and for which businesses (None: all)."""

    method: str
    businesses: frozenset[str] | None


class MemoryUsageData:
    """Thread-safe: a browser test sets figures while the server's thread reads them."""

    def __init__(
        self,
        businesses: Collection[str] = ("Padaria Central",),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._businesses = list(businesses)
        self._days: dict[tuple[str, date], DayUsage] = {}
        self._budgets: dict[str, BudgetState] = {}  # a business's own, by name
        self._lock = threading.Lock()
        self.clock = clock
        self.deployment = BudgetState(ALL_BUSINESSES, None, 0.0, False)
        self.token_limit = 0
        self.asked: list[Asked] = []

    # -- what tests do -----------------------------------------------------------------------

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).date()

    def set_day(self, days_ago: int, business: str | None = None, **figures: Any) -> DayUsage:
        """One business's figures `days_ago` days before today (UTC); those not named zero."""
        business = business or self._businesses[0]
        day = self.today() - timedelta(days=days_ago)
        usage = replace(zero(day), **figures)
        with self._lock:
            self._days[(business, day)] = usage
        return usage

    def set_budget(
        self, scope: str, limit_usd: float | None, spent_usd: float, biting: bool | None = None
    ) -> None:
        """A budget state: ALL_BUSINESSES is the deployment's; reached when spent >= limit."""
        if biting is None:
            biting = limit_usd is not None and spent_usd >= limit_usd
        state = BudgetState(scope, limit_usd, spent_usd, biting)
        with self._lock:
            if scope == ALL_BUSINESSES:
                self.deployment = state
            else:
                self._budgets[scope] = state

    def asked_for(self, method: str) -> list[frozenset[str] | None]:
        with self._lock:
            return [a.businesses for a in self.asked if a.method == method]

    # -- UsageData ---------------------------------------------------------------------------

    def business_names(self) -> list[str]:
        return list(self._businesses)

    async def days(self, businesses: Collection[str] | None, since: date) -> list[DayUsage]:
        wanted = self._record("days", businesses)
        today = self.today()
        result = []
        with self._lock:
            for i in range((today - since).days + 1):
                day = since + timedelta(days=i)
                total = zero(day)
                for (business, at), usage in self._days.items():
                    if at == day and (wanted is None or business in wanted):
                        total = add(total, usage)
                result.append(total)
        return result

    async def budgets(self, businesses: Collection[str] | None) -> list[BudgetState]:
        wanted = self._record("budgets", businesses)
        with self._lock:
            own = [
                self._budgets[b]
                for b in self._businesses
                if b in self._budgets and (wanted is None or b in wanted)
            ]
            return [self.deployment, *own]

    def user_daily_token_limit(self) -> int:
        return self.token_limit

    def _record(self, method: str, businesses: Collection[str] | None) -> frozenset[str] | None:
        wanted = None if businesses is None else frozenset(businesses)
        with self._lock:
            self.asked.append(Asked(method, wanted))
        return wanted


def add(a: DayUsage, b: DayUsage) -> DayUsage:
    return replace(a, **{name: getattr(a, name) + getattr(b, name) for name in FIGURES})


def zero(day: date) -> DayUsage:
    return DayUsage(day, 0, 0, 0, 0, 0, 0, 0, 0.0)
