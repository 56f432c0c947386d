"""The console's Usage page: the last 30 days' messages, tokens and estimated cost, and budgets."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response

from config import Settings
from console.languages import N_, Language
from console.web import PREFIX, OperatorDep, console_of, language_of, not_found, now_of, render
from storage.holds import BudgetHolds
from storage.operators import Operator
from storage.usage import Day, Usage

PAGE = f"{PREFIX}/usage"
ALL_BUSINESSES = N_("All businesses")  # the scope of the deployment's own budget
DAYS = 30
FIGURES = (
    "messages",
    "answers",
    "handoffs",
    "prompt_tokens",
    "output_tokens",
    "tts_tokens",
    "embedding_tokens",  # File Search indexing documents
)
REACHED = N_("Budget reached: the assistant stops answering until midnight UTC")
NO_BUDGET = N_("No daily budget set")
ESTIMATE = N_(
    "An estimate from the token counts Gemini reports and the prices in the settings; "
    "Google's bill is the truth, and Meta bills WhatsApp conversations separately."
)
INDEXING = N_(
    "Indexing: the tokens File Search embedded for the documents uploaded that day, estimated "
    "from their size."
)
# What the charts (usage.js) call their figures, by the keys of `chart_data`.
CHART_WORDS = {
    "activity": N_("Messages, answers and handoffs per day"),
    "tokens": N_("Tokens per day"),
    "cost": N_("Estimated cost per day (USD)"),
    "day": N_("Day"),
    "messages": N_("Messages"),
    "answers": N_("Answers"),
    "handoffs": N_("Handoffs"),
    "prompt_tokens": N_("Prompt"),
    "output_tokens": N_("Output"),
    "tts_tokens": N_("TTS"),
    "embedding_tokens": N_("Indexing"),
    "cost_usd": N_("Estimated cost"),
    "figures": N_("the table below has the figures"),
}


@dataclass(frozen=True, slots=True)
class BudgetState:
    """Today's (UTC) spending against one daily budget."""

    scope: str  # ALL_BUSINESSES (the deployment's) or a business's name
    limit_usd: float | None  # None: no budget
    spent_usd: float  # today's estimated spend in that scope
    biting: bool  # the spend reached the limit: Gemini is not called until tomorrow (UTC)
    held_usd: float = 0.0  # what the answers under way hold on it now (storage/holds.py)


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget state as the page says it."""

    scope: str
    text: str
    reached: bool


# ---------------------------------------------------------------------------------------------
# Which businesses


def served(settings: Settings, operator: Operator) -> list[str]:
    """The businesses whose usage this operator may see (the admin: all)."""
    names = settings.businesses.names()
    return names if operator.scope is None else [n for n in names if n in operator.scope]


def number_ids(settings: Settings, businesses: Collection[str] | None) -> list[str] | None:
    """The phone number ids of the named businesses; None (every business, those since
    taken out of the tenants file included) stays None."""
    if businesses is None:
        return None
    named = (settings.businesses.named(name) for name in businesses)
    return [business.phone_number_id for business in named if business is not None]


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


def filters(
    businesses: list[str], business: str, language: Language
) -> list[tuple[str, str, bool]]:
    """The chooser's links (label, address, current) when there are several: all, then each."""
    if len(businesses) < 2:
        return []
    every = language.gettext(ALL_BUSINESSES)
    return [(b or every, page_url(b), b == business) for b in ("", *businesses)]


# ---------------------------------------------------------------------------------------------
# Figures


def window(found: Sequence[Day], since: date) -> list[Day]:
    """Exactly the DAYS days from `since`, oldest first; a day the store has nothing of is
    an empty Day."""
    by_day = {d.day: d for d in found}
    days = ((since + timedelta(days=i)).isoformat() for i in range(DAYS))
    return [by_day.get(day) or Day(day) for day in days]


def total(days: Sequence[Day], since: date) -> Day:
    """The totals row: every figure summed over the days."""
    return sum(days, Day(since.isoformat()))


def chart_data(label: str, days: Sequence[Day], language: Language) -> dict[str, Any]:
    """What the charts draw, oldest day first, and their words and numbers in the page's
    language: read by usage.js from the page's JSON element."""
    data: dict[str, Any] = {
        "business": label,
        "days": [d.day for d in days],
        "locale": language.code,
        "words": {key: language.gettext(word) for key, word in CHART_WORDS.items()},
    }
    for name in FIGURES:
        data[name] = [getattr(d, name) for d in days]
    data["cost_usd"] = [d.cost_usd for d in days]
    return data


def budget_line(state: BudgetState, language: Language, *, figures: bool = True) -> BudgetLine:
    """How much of the budget today's spend used (`Today: $1.23 of $5.00 (25%)`), or that there
    is none, or that it was reached; without `figures`, the amounts are left out. In the page's
    language, the deployment's scope too."""
    say = language.gettext
    scope = say(ALL_BUSINESSES) if state.scope == ALL_BUSINESSES else state.scope
    if state.limit_usd is None:
        return BudgetLine(scope, say(NO_BUDGET), False)
    limit = state.limit_usd
    share = round(100 * state.spent_usd / limit) if limit > 0 else 100
    places = 2 if limit >= 1 else 4  # a budget of cents still shows what was spent
    today = say(
        "Today: %(spent)s of %(limit)s (%(share)s)",
        spent=language.money(state.spent_usd, places),
        limit=language.money(limit, places),
        share=language.percent(share / 100),
    )
    if state.held_usd > 0:
        today = say(
            "%(today)s, %(held)s more held for answers under way",
            today=today,
            held=language.money(state.held_usd, places),
        )
    if state.biting:
        reached = say("%(reached)s. %(today)s.", reached=say(REACHED), today=today)
        return BudgetLine(scope, reached if figures else say(REACHED), True)
    return BudgetLine(scope, today if figures else say("A daily budget is set"), False)


def budget_lines(
    states: Sequence[BudgetState], operator: Operator, language: Language
) -> list[BudgetLine]:
    """The admin sees every state; an operator sees their businesses', and of the deployment's
    (the first, summed over every business) whether there is one and whether it was reached,
    never its amounts."""
    if operator.scope is None or not states:
        return [budget_line(s, language) for s in states]
    deployment, *own = states
    return [
        budget_line(deployment, language, figures=False),
        *(budget_line(s, language) for s in own),
    ]


async def budget_states(
    settings: Settings, usage: Usage, holds: BudgetHolds, businesses: Collection[str] | None
) -> list[BudgetState]:
    """The deployment's budget first (always; `limit_usd` None when it has none), then each of
    `businesses` (None: every business) that has a budget of its own; each with what the
    answers under way hold on it."""
    limit = settings.daily_budget_usd
    spent = await usage.spent_today()
    held = await holds.held() if limit > 0 else 0.0
    states = [BudgetState(ALL_BUSINESSES, limit or None, spent, 0 < limit <= spent, held)]
    for business in settings.businesses:
        own = business.daily_budget_usd
        if own <= 0 or (businesses is not None and business.name not in businesses):
            continue
        number = [business.phone_number_id]
        spent = await usage.spent_today(number)
        states.append(
            BudgetState(business.name, own, spent, own <= spent, await holds.held(number))
        )
    return states


# ---------------------------------------------------------------------------------------------
# The page


def shown(request: Request, label: str, language: Language) -> str:
    """The page's scope as people know it: all businesses, or the business's name."""
    if label == ALL_BUSINESSES:
        return language.gettext(ALL_BUSINESSES)
    return console_of(request).shown(label, language)


async def usage_page(request: Request, operator: OperatorDep, business: str = "") -> Response:
    console = console_of(request)
    settings, usage, holds = console.settings, console.store.usage, console.store.holds
    businesses = served(settings, operator)
    language = language_of(request)
    context: dict[str, Any] = {
        "label": None,
        "note": language.gettext(ESTIMATE),
        "indexing": language.gettext(INDEXING),
        "all_businesses": ALL_BUSINESSES,
    }
    if operator.scope is None or businesses:
        label, asked = asked_for(operator, businesses, business)
        today = datetime.fromtimestamp(now_of(request), UTC).date()
        since = today - timedelta(days=DAYS - 1)
        days = window(await usage.days(number_ids(settings, asked), since.isoformat()), since)
        limit = settings.user_daily_token_limit
        totals = total(days, since)
        context.update(
            label=label,
            filters=filters(businesses, business, language),
            rows=list(reversed(days)),
            totals=totals,
            used=totals != Day(since.isoformat()),  # anything at all: else the page says so
            today=today.isoformat(),
            chart=chart_data(shown(request, label, language), days, language),
            budgets=budget_lines(
                await budget_states(settings, usage, holds, asked), operator, language
            ),
            user_limit=language.count(limit) if limit > 0 else None,
            money=language.money,
            count=language.count,
        )
    elif business:
        raise not_found()
    return render(request, "usage.html", **context)
