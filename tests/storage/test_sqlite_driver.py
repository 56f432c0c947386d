"""The aiosqlite driver under SQLAlchemy: same answers as aiosqlite; a statement runs at once
when SQLite can run it without waiting, else in one trip to the connection's thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage import sqlite_driver
from storage.sqlite_driver import OneTripConnection, one_trip_creator


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}"
    engine = create_async_engine(url, async_creator=one_trip_creator(url))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions sent to the connection's thread."""
    sent: list[str] = []
    original: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


def holding_the_write_lock(tmp_path: Path) -> sqlite3.Connection:
    """Another process's connection, in a transaction that wrote 'first' (not committed)."""
    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (name) VALUES ('first')")
    return other


async def test_the_engine_gets_a_one_trip_connection(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, OneTripConnection)


async def test_a_statement_and_its_rows_take_no_trip_while_nothing_holds_the_lock(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('a'), ('b'), ('c')"))
        trips.clear()
        rows = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).all()
        await conn.execute(text("INSERT INTO t (name) VALUES ('d')"))
        assert trips == []
    assert [r.name for r in rows] == ["a", "b", "c"]


async def test_a_write_waits_for_another_writers_lock_in_one_trip_off_the_event_loop(
    engine: AsyncEngine, trips: list[str], tmp_path: Path
) -> None:
    other = holding_the_write_lock(tmp_path)
    released = threading.Event()

    def release() -> None:
        other.execute("COMMIT")
        released.set()

    async with engine.connect() as conn:
        trips.clear()
        timer = asyncio.get_running_loop().call_later(0.3, release)
        ticks = 0

        async def tick() -> None:  # the event loop goes on while the write waits
            nonlocal ticks
            while not released.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(tick())
        await conn.execute(text("INSERT INTO t (name) VALUES ('second')"))
        await ticking
        timer.cancel()
        assert trips == ["_waiting"]
        assert ticks >= 5
        names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
        assert names == ["first", "second"]
    other.close()


async def test_a_write_gives_up_with_locked_once_the_busy_timeout_has_passed(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_driver, "BUSY_TIMEOUT_MS", 200)
    other = holding_the_write_lock(tmp_path)
    # A write still waiting after 3 s would get the lock then, and go through.
    release = asyncio.get_running_loop().call_later(3, other.execute, "COMMIT")
    async with engine.connect() as conn:
        with pytest.raises(OperationalError, match="locked"):
            await conn.execute(text("INSERT INTO t (name) VALUES ('second')"))
    release.cancel()
    other.execute("COMMIT")
    other.close()
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM t"))).scalars().all()
    assert names == ["first"]


async def test_a_transaction_that_read_an_older_state_fails_at_once_rather_than_waiting(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_BUSY_SNAPSHOT: waiting cannot help, so the write is refused on the first try."""
    monkeypatch.setattr(sqlite_driver, "BUSY_TIMEOUT_MS", 1_000)
    pauses: list[float] = []
    sleep = time.sleep

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(time, "sleep", pause)
    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("BEGIN"))
        await conn.execute(text("SELECT count(*) FROM t"))  # the snapshot it reads from
        other.execute("INSERT INTO t (name) VALUES ('elsewhere')")  # committed after it
        with pytest.raises(OperationalError):
            await asyncio.wait_for(
                conn.execute(text("INSERT INTO t (name) VALUES ('here')")), timeout=5
            )
        await conn.execute(text("ROLLBACK"))
    other.close()
    assert pauses == []


async def test_a_connection_that_checkpoints_does_it_on_its_thread_every_so_many_writes(
    engine: AsyncEngine, trips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_driver, "CHECKPOINT_EVERY", 3)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("PRAGMA journal_mode=WAL"))
        trips.clear()
        for k in range(7):
            await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": f"n{k}"})
        await conn.execute(text("SELECT count(*) FROM t"))
        assert trips == ["_checkpoint", "_checkpoint"]
    async with engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
    assert mode == 0  # SQLite's own, which would run on the event loop, is off


async def test_rowcount_lastrowid_and_returning_read_as_with_sqlite3(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
        assert inserted.lastrowid == 1
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "y"}, {"n": "z"}])
        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        returned = await conn.execute(text("DELETE FROM t WHERE id = 1 RETURNING name"))
        assert returned.scalar_one() == "x"
        assert (await conn.execute(text("UPDATE t SET name = 'q' WHERE id = 99"))).rowcount == 0
        assert (await conn.execute(text("SELECT name FROM t WHERE id = 99"))).first() is None


async def test_rows_are_handed_out_once_one_at_a_time_or_in_batches(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('a'), ('b'), ('c'), ('d')"))
        result = await conn.execute(text("SELECT name FROM t ORDER BY id"))
        assert result.fetchone() == ("a",)
        assert result.fetchmany(2) == [("b",), ("c",)]
        assert result.fetchall() == [("d",)]
        assert result.fetchall() == []


async def test_sqlite_errors_reach_the_caller_and_the_connection_goes_on(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('same')"))
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES ('same')"))
        await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_executemany_in_autocommit_takes_the_lock_first_and_writes_all_or_none(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        trips.clear()
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "a"}, {"n": "b"}])
        assert trips == []
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "c"}, {"n": "a"}])
        names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
        assert names == ["a", "b"]  # "c" went with the failed "a"


async def driver_of(conn: Any) -> OneTripConnection:
    raw = await conn.get_raw_connection()
    driver: OneTripConnection = raw.driver_connection
    return driver


INSERT_RETURNING = "INSERT INTO t (name) VALUES (?) ON CONFLICT (name) DO NOTHING RETURNING name"


async def test_each_returning_runs_every_set_and_returns_the_rows_in_order(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver = await driver_of(conn)
        trips.clear()
        assert await driver.each_returning(INSERT_RETURNING, [["a"]]) == [("a",)]
        rows = await driver.each_returning(INSERT_RETURNING, [["b"], ["a"], ["c"]])
        assert rows == [("b",), ("c",)]  # "a" was there: no row for it
        assert trips == []  # nothing held the lock: no trip to the thread
        names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
    assert names == ["a", "b", "c"]


async def test_each_returning_writes_all_sets_or_none(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver = await driver_of(conn)
        with pytest.raises(sqlite3.IntegrityError):
            await driver.each_returning(
                "INSERT INTO t (id, name) VALUES (?, ?)", [[1, "x"], [1, "y"]]
            )
        count = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
        await driver.each_returning(INSERT_RETURNING, [["after"]])  # the connection goes on
        names = (await conn.execute(text("SELECT name FROM t"))).scalars().all()
    assert count == 0  # "x" went with the failed second row
    assert names == ["after"]


async def test_each_returning_waits_for_another_writers_lock_off_the_event_loop(
    engine: AsyncEngine, trips: list[str], tmp_path: Path
) -> None:
    other = holding_the_write_lock(tmp_path)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver = await driver_of(conn)
        trips.clear()
        asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")
        rows = await driver.each_returning(INSERT_RETURNING, [["second"], ["first"]])
        assert trips == ["_waiting"]
        names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
    other.close()
    assert rows == [("second",)]
    assert names == ["first", "second"]
