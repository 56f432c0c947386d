"""aiosqlite with one trip to the connection's thread per statement, for SQLAlchemy's engine.

aiosqlite runs every sqlite3 call on the connection's own thread, and SQLAlchemy's adapter
makes four such calls per statement (a cursor, the statement, its rows, closing the cursor);
each trip is a queue hand-off and an event-loop wake-up, which cost more CPU than SQLite's own
work on the service's small statements. Here the statement and its rows go in one trip, the
cursor is made on that trip, and closing it waits for the next one. Every sqlite3 call still
runs on the connection's thread, and the engine still sees aiosqlite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url

Rows = list[Any]


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors fetch with their statement."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy makes aiosqlite's: never holds up exit
        self._closing: list[sqlite3.Cursor] = []

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        """A cursor at once: its sqlite3 cursor is made on its first statement's trip."""
        return OneTripCursor(self)

    def close_later(self, cursor: sqlite3.Cursor) -> None:
        self._closing.append(cursor)

    def sqlite_cursor(self) -> sqlite3.Cursor:
        """On the connection's thread: cursors closed since the last trip go, and a new one
        is made."""
        while self._closing:
            self._closing.pop().close()
        return self._conn.cursor()


class OneTripCursor(aiosqlite.Cursor):
    """aiosqlite's cursor, the statement and its rows in one trip."""

    def __init__(self, conn: OneTripConnection) -> None:
        self._conn: OneTripConnection = conn
        self.iter_chunk_size = conn._iter_chunk_size
        self._cursor: sqlite3.Cursor | None = None  # type: ignore[assignment]
        self._rows: Rows | None = None
        self._closed = False

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> OneTripCursor:
        self._rows = await self._conn._execute(self._run, sql, parameters or ())  # type: ignore[no-untyped-call]
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> OneTripCursor:
        self._rows = await self._conn._execute(self._run_many, sql, parameters)  # type: ignore[no-untyped-call]
        return self

    def _own(self) -> sqlite3.Cursor:
        if self._cursor is None:
            self._cursor = self._conn.sqlite_cursor()
        return self._cursor

    def _run(self, sql: str, parameters: Iterable[Any]) -> Rows | None:
        """On the connection's thread: the statement, and its rows if it has any."""
        cursor = self._own()
        cursor.execute(sql, parameters)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else None

    def _run_many(self, sql: str, parameters: Iterable[Iterable[Any]]) -> None:
        self._own().executemany(sql, parameters)  # type: ignore[arg-type]

    async def fetchall(self) -> Rows:
        rows, self._rows = self._rows, None
        return rows if rows is not None else []

    async def fetchone(self) -> Any:
        rows = self._rows or []
        return rows.pop(0) if rows else None

    async def fetchmany(self, size: int | None = None) -> Rows:
        rows = self._rows or []
        count = len(rows) if size is None else size
        taken, self._rows = rows[:count], rows[count:]
        return taken

    async def close(self) -> None:
        """Closed on the next trip; its rowcount and description stay readable, as after
        sqlite3's own close."""
        if self._cursor is not None and not self._closed:
            self._conn.close_later(self._cursor)
        self._closed = True
        self._rows = None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid if self._cursor is not None else None

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None


def one_trip_creator(url: str) -> Callable[[], OneTripConnection]:
    """The engine's `async_creator` for a `sqlite+aiosqlite` URL: connects with the same
    arguments SQLAlchemy's own aiosqlite dialect would."""
    [database], options = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, **dict(options))
        return connection

    return lambda: OneTripConnection(connector)
