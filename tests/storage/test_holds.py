"""Holds on the daily budgets in the store: reserved atomically by many at once (two stores on one
database: two instances, or worker processes), settled with the real cost, gone with a lease."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select, update

from domain.costs import TokenUse
from storage.holds import Limits
from storage.schema import budget_holds, inbox
from storage.store import Store
from storage.usage import ALL

BAKERY, GARAGE = "111111111111111", "222222222222222"
NOON = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
CAP = 0.4  # one answer's worst case in these tests
THREE = Limits(deployment=1.0)  # room for three holds of CAP: 0, 0.4 and 0.8 are below 1.0


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    opened.usage.clock = lambda: NOON
    yield opened
    await opened.close()


async def claimed(
    store: Store, count: int, owner: str = "w1", lease: float = 60.0, number: str = BAKERY
) -> list[int]:
    """`count` messages being answered by `owner` under a lease of `lease` seconds."""
    now = time.time()
    async with store.engine.begin() as conn:
        first = int(await conn.scalar(select(inbox.c.id).order_by(inbox.c.id.desc())) or 0) + 1
        await conn.execute(
            insert(inbox),
            [
                {
                    "id": first + i,
                    "message_id": f"wamid.h{first + i}",
                    "conversation_key": f"{number}:1650555{first + i:04d}",
                    "recipient": f"1650555{first + i:04d}",
                    "phone_number_id": number,
                    "kind": "text",
                    "text": "hi",
                    "payload": "{}",
                    "sent_at": int(now),
                    "received_at": now,
                    "state": "processing",
                    "attempts": 1,
                    "owner": owner,
                    "lease_until": now + lease,
                    "parts_sent": 0,
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )
    return [first + i for i in range(count)]


async def settle(store: Store, row_id: int, owner: str, cost: float, number: str = BAKERY) -> None:
    await store.usage.add(
        number,
        f"{number}:x",
        answered=True,
        handoff=False,
        use=TokenUse(prompt=1000),
        cost_usd=cost,
        per_user=False,
        settles=(row_id, owner),
    )


async def test_holds_leave_room_for_three_answers_and_refuse_the_fourth(store: Store) -> None:
    rows = await claimed(store, 4)
    refused = [await store.holds.reserve(r, "w1", BAKERY, CAP, THREE) for r in rows]
    assert refused == [None, None, None, ALL]
    assert await store.holds.held() == pytest.approx(3 * CAP)


async def test_many_reservations_at_once_from_two_stores_grant_three(database_url: str) -> None:
    """Two stores on one database (two instances, or a web and a worker process), each with its
    own connection; 24 answers reserve at once: three get the room, whatever the interleaving."""
    first, second = await Store.open(database_url), await Store.open(database_url)
    try:
        rows = await claimed(first, 24)
        granted = await asyncio.gather(
            *(
                (first if i % 2 else second).holds.reserve(row, "w1", BAKERY, CAP, THREE)
                for i, row in enumerate(rows)
            )
        )
        async with first.engine.connect() as conn:
            kept = (await conn.execute(select(budget_holds))).all()
    finally:
        await first.close()
        await second.close()
    assert granted.count(None) == 3
    assert len(kept) == 3


async def test_settling_replaces_the_hold_by_the_real_cost(store: Store) -> None:
    rows = await claimed(store, 5)
    for row in rows[:3]:
        assert await store.holds.reserve(row, "w1", BAKERY, CAP, THREE) is None
    assert await store.holds.reserve(rows[3], "w1", BAKERY, CAP, THREE) == ALL
    await settle(store, rows[0], "w1", 0.05)  # the answer cost far less than its worst case
    assert await store.usage.spent_today() == pytest.approx(0.05)
    assert await store.holds.held() == pytest.approx(2 * CAP)
    assert await store.holds.reserve(rows[3], "w1", BAKERY, CAP, THREE) is None  # 0.85 < 1
    assert await store.holds.reserve(rows[4], "w1", BAKERY, CAP, THREE) == ALL  # 1.25


async def test_a_failed_answer_releases_its_hold(store: Store) -> None:
    [row, other] = await claimed(store, 2)
    one = Limits(deployment=CAP)  # room for one answer
    assert await store.holds.reserve(row, "w1", BAKERY, CAP, one) is None
    assert await store.holds.reserve(other, "w1", BAKERY, CAP, one) == ALL
    await store.usage.add(
        BAKERY,
        "k",
        answered=False,
        handoff=False,
        use=TokenUse(),
        cost_usd=0.0,
        per_user=False,
        settles=(row, "w1"),
    )
    assert await store.holds.held() == 0
    assert await store.holds.reserve(other, "w1", BAKERY, CAP, one) is None


async def test_a_crashed_workers_hold_stops_counting_when_its_lease_runs_out(
    store: Store,
) -> None:
    [crashed] = await claimed(store, 1, owner="dead")
    [waiting] = await claimed(store, 1, owner="alive")
    one = Limits(deployment=CAP)
    assert await store.holds.reserve(crashed, "dead", BAKERY, CAP, one) is None
    assert await store.holds.reserve(waiting, "alive", BAKERY, CAP, one) == ALL
    async with store.engine.begin() as conn:  # the dead worker's lease runs out
        await conn.execute(
            update(inbox).where(inbox.c.id == crashed).values(lease_until=time.time() - 1)
        )
    assert await store.holds.reserve(waiting, "alive", BAKERY, CAP, one) is None


async def test_a_message_taken_over_holds_again_under_its_new_owner(store: Store) -> None:
    [row] = await claimed(store, 1, owner="dead")
    one = Limits(deployment=CAP)
    assert await store.holds.reserve(row, "dead", BAKERY, CAP, one) is None
    async with store.engine.begin() as conn:  # another worker claims it after the lease
        await conn.execute(update(inbox).where(inbox.c.id == row).values(owner="heir"))
    assert await store.holds.held() == 0  # the dead owner's hold no longer counts
    assert await store.holds.reserve(row, "heir", BAKERY, CAP, one) is None
    await settle(store, row, "dead", 0.0)  # the old worker, woken late, settles nothing of it
    assert await store.holds.held() == pytest.approx(CAP)
    await settle(store, row, "heir", 0.1)
    assert await store.holds.held() == 0


async def test_a_business_budget_holds_only_that_business(store: Store) -> None:
    bakery = await claimed(store, 2, number=BAKERY)
    garage = await claimed(store, 2, number=GARAGE)
    own = Limits(business=CAP)
    assert await store.holds.reserve(bakery[0], "w1", BAKERY, CAP, own) is None
    assert await store.holds.reserve(bakery[1], "w1", BAKERY, CAP, own) == BAKERY
    assert await store.holds.reserve(garage[0], "w1", GARAGE, CAP, own) is None
    both = Limits(deployment=10.0, business=CAP)
    assert await store.holds.reserve(garage[1], "w1", GARAGE, CAP, both) == GARAGE
    assert await store.holds.held([BAKERY]) == pytest.approx(CAP)


async def test_the_days_spend_counts_against_the_room(store: Store) -> None:
    [row] = await claimed(store, 1)
    await store.usage.indexed(BAKERY, TokenUse(embedding=1000), 1.0)  # documents indexed today
    assert await store.holds.reserve(row, "w1", BAKERY, CAP, THREE) == ALL


async def test_old_holds_are_purged(store: Store) -> None:
    [row] = await claimed(store, 1)
    assert await store.holds.reserve(row, "w1", BAKERY, CAP, THREE) is None
    async with store.engine.begin() as conn:
        await conn.execute(update(budget_holds).values(held_at=time.time() - 2 * 86400))
    await store.usage.purge(60)
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(budget_holds))).all() == []
