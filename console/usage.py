"""The console's Usage page: the last 30 days' messages, tokens and estimated cost, and budgets."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import Request, Response

from console.usage_data import ALL_BUSINESSES, BudgetState, DayUsage, UsageData
from console.web import PREFIX, OperatorDep, console_of, not_found, now_of, render
from storage.operators import Operator

PAGE = f"{PREFIX}/usage"
DAYS = 30
FIGURES = ("messages", "answers", "handoffs", "prompt_tokens", "output_tokens", "tts_tokens")
REACHED = "Budget reached: the assistant stops answering until midnight UTC"
NO_BUDGET = "No daily budget set"
ESTIMATE = (
    "An estimate from the token counts Gemini reports and the prices in the settings; "
    "Google's bill is the truth, and Meta bills WhatsApp conversations separately."
)


def usage_of(request: Request) -> UsageData:
    return cast(UsageData, request.app.state.usage_data)


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget state as the page says it."""

    scope: str
    text: str
    reached: bool


# ---------------------------------------------------------------------------------------------
# Which businesses


def served(request: Request, operator: Operator) -> list[str]:
    """The businesses whose usage this operator may see (the admin: all)."""
    names = usage_of(request).business_names()
    return names if operator.scope is None else [n for n in names if n in operator.scope]


def asked_for(
    operator: Operator, businesses: list[str], business: str
) -> tuple[str, Collection[str] | None]:
    """The page's label and the businesses to sum: the one chosen, else every one served
    (None for the admin: all, those no longer configured included); another's answers 404."""
    if business:
        if business not in businesses:
            raise not_found()
        return business, (business,)
    label = businesses[0] if len(businesses) == 1 else ALL_BUSINESSES
    return label, None if operator.scope is None else tuple(businesses)


def page_url(business: str) -> str:
    return f"{PAGE}?{urlencode({'business': business})}" if business else PAGE


def filters(businesses: list[str], business: str) -> list[tuple[str, str, bool]]:
    """The chooser's links (label, address, current) when there are several: all, then each."""
    if len(businesses) < 2:
        return []
    return [(b or ALL_BUSINESSES, page_url(b), b == business) for b in ("", *businesses)]


# ---------------------------------------------------------------------------------------------
# Figures


def zero(day: date) -> DayUsage:
    return DayUsage(day, 0, 0, 0, 0, 0, 0, 0, 0.0)


def window(found: Sequence[DayUsage], since: date) -> list[DayUsage]:
    """Exactly the DAYS days from `since`, oldest first; a day the data left out is zeros."""
    by_day = {d.day: d for d in found}
    days = (since + timedelta(days=i) for i in range(DAYS))
    return [by_day.get(day) or zero(day) for day in days]


def total(days: Sequence[DayUsage], since: date) -> DayUsage:
    """The totals row: every figure summed over the days."""
    sums = {name: sum(getattr(d, name) for d in days) for name in (*FIGURES, "searches")}
    return DayUsage(since, **sums, cost_usd=sum(d.cost_usd for d in days))


def chart_data(label: str, days: Sequence[DayUsage]) -> dict[str, Any]:
    """What the charts draw, oldest day first: read by usage.js from the page's JSON element."""
    data: dict[str, Any] = {"business": label, "days": [d.day.isoformat() for d in days]}
    for name in FIGURES:
        data[name] = [getattr(d, name) for d in days]
    data["cost_usd"] = [d.cost_usd for d in days]
    return data


def money(value: float, places: int = 2) -> str:
    return f"${value:,.{places}f}"


def count(value: int) -> str:
    return f"{value:,}"


def budget_line(state: BudgetState, *, figures: bool = True) -> BudgetLine:
    """How much of the budget today's spend used (`Today: $1.23 of $5.00 (25%)`), or that there
    is none, or that it was reached; without `figures`, the amounts are left out."""
    if state.limit_usd is None:
        return BudgetLine(state.scope, NO_BUDGET, False)
    limit = state.limit_usd
    share = round(100 * state.spent_usd / limit) if limit > 0 else 100
    places = 2 if limit >= 1 else 4  # a budget of cents still shows what was spent
    today = f"Today: {money(state.spent_usd, places)} of {money(limit, places)} ({share}%)"
    if state.biting:
        return BudgetLine(state.scope, f"{REACHED}. {today}." if figures else REACHED, True)
    return BudgetLine(state.scope, today if figures else "A daily budget is set", False)


def budget_lines(states: Sequence[BudgetState], operator: Operator) -> list[BudgetLine]:
    """The admin sees every state; an operator sees their businesses', and of the deployment's
    (the first, summed over every business) whether there is one and whether it was reached,
    never its amounts."""
    if operator.scope is None or not states:
        return [budget_line(s) for s in states]
    deployment, *own = states
    return [budget_line(deployment, figures=False), *(budget_line(s) for s in own)]


# ---------------------------------------------------------------------------------------------
# The page


async def usage_page(request: Request, operator: OperatorDep, business: str = "") -> Response:
    usage = usage_of(request)
    businesses = served(request, operator)
    context: dict[str, Any] = {"label": None, "note": ESTIMATE, "all_businesses": ALL_BUSINESSES}
    if operator.scope is None or businesses:
        label, asked = asked_for(operator, businesses, business)
        today = datetime.fromtimestamp(now_of(request), UTC).date()
        since = today - timedelta(days=DAYS - 1)
        days = window(await usage.days(asked, since), since)
        limit = usage.user_daily_token_limit()
        context.update(
            label=label,
            filters=filters(businesses, business),
            rows=list(reversed(days)),
            totals=total(days, since),
            today=today,
            chart=chart_data(console_of(request).shown(label), days),  # as people know it
            budgets=budget_lines(await usage.budgets(asked), operator),
            user_limit=count(limit) if limit > 0 else None,
            money=money,
            count=count,
        )
    elif business:
        raise not_found()
    return render(request, "usage.html", **context)
