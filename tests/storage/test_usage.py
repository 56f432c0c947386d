"""Usage per UTC day in the store: summed per business, per user (hashed), noticed once a day,
and forgotten after the days the console shows."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import select

from domain.costs import TokenUse
from storage.schema import user_days
from storage.store import Store

BAKERY, GARAGE = "111111111111111", "222222222222222"
USER = f"{BAKERY}:5511987654321"
NOON = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def days_before_noon(days: int) -> Callable[[], dt.datetime]:
    return lambda: NOON - dt.timedelta(days=days)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    opened.usage.clock = lambda: NOON
    yield opened
    await opened.close()


async def add(
    store: Store, number: str, cost: float, *, tokens: int = 100, user: str = USER
) -> None:
    await store.usage.add(
        number,
        user,
        answered=True,
        handoff=False,
        use=TokenUse(prompt=tokens),
        cost_usd=cost,
        per_user=True,
    )


async def test_spend_is_summed_per_business_and_for_all(store: Store) -> None:
    await add(store, BAKERY, 0.25)
    await add(store, BAKERY, 0.5)
    await add(store, GARAGE, 1.0)
    assert await store.usage.spent_today() == pytest.approx(1.75)
    assert await store.usage.spent_today([BAKERY]) == pytest.approx(0.75)
    assert await store.usage.spent_today([GARAGE, BAKERY]) == pytest.approx(1.75)
    [day] = await store.usage.days([BAKERY], "2026-12-01")
    assert (day.day, day.messages, day.answers, day.use.prompt) == ("2026-12-02", 2, 2, 200)


async def test_a_users_tokens_are_kept_by_a_hash_and_only_for_today(store: Store) -> None:
    await add(store, BAKERY, 0.1, tokens=700)
    await add(store, BAKERY, 0.1, tokens=800)
    assert await store.usage.user_tokens_today(USER) == 1500
    assert await store.usage.user_tokens_today(f"{GARAGE}:5511987654321") == 0
    async with store.engine.connect() as conn:
        [row] = (await conn.execute(select(user_days))).all()
    assert "5511987654321" not in str(row)
    store.usage.clock = lambda: NOON + dt.timedelta(hours=12)  # the next UTC day
    assert await store.usage.user_tokens_today(USER) == 0
    assert await store.usage.spent_today() == 0


async def test_a_budget_is_noticed_once_a_day_whichever_instance_asks(
    store: Store, database_url: str
) -> None:
    other = await Store.open(database_url)
    other.usage.clock = lambda: NOON
    try:
        assert await store.usage.first_bite("all") is True
        assert await other.usage.first_bite("all") is False
        assert await other.usage.first_bite(BAKERY) is True
        other.usage.clock = lambda: NOON + dt.timedelta(days=1)
        assert await other.usage.first_bite("all") is True
    finally:
        await other.close()


async def test_days_older_than_60_are_forgotten_and_per_user_counts_after_a_day(
    store: Store,
) -> None:
    for days_ago in (61, 60, 59, 1, 0):
        store.usage.clock = days_before_noon(days_ago)
        await add(store, BAKERY, 1.0)
    store.usage.clock = lambda: NOON
    await store.usage.purge(60)
    kept = [day.day for day in await store.usage.days(None, "2000-01-01")]
    assert kept == ["2026-10-03", "2026-10-04", "2026-12-01", "2026-12-02"]
    async with store.engine.connect() as conn:
        user_rows = sorted(row.day for row in (await conn.execute(select(user_days))).all())
    assert user_rows == ["2026-12-01", "2026-12-02"]
