"""aiosqlite under SQLAlchemy's engine, with a statement run where it costs least.

aiosqlite runs every sqlite3 call on the connection's own thread. Each trip there is a queue
hand-off, a thread wake-up and an event-loop wake-up, which cost more CPU than SQLite's own work
on the service's small statements (bench/RESULTS.md, "Figures behind design choices"). So:

- A statement runs on the event loop's thread, at once, when it can: with the busy timeout at
  zero, SQLite either does the work (microseconds on this service's statements, WAL, no fsync
  at commit) or refuses at once with SQLITE_BUSY, before changing anything, when another
  connection holds the write lock. Only then does it take a trip to the connection's thread,
  where it waits for the lock (up to BUSY_TIMEOUT_MS), so the event loop never waits on it.
- A trip carries the statement and its rows together (aiosqlite's cursor makes four: a cursor,
  the statement, its rows, closing it); closing a cursor waits for the next statement.
- The hot path's statements, compiled once by SQLAlchemy, can skip its execution context and
  run here directly (`each_returning`, used by `Database.rows`), by the same rules.
- Copying the write-ahead log back into the database (a checkpoint, with an fsync) never runs
  on the event loop: SQLite's automatic checkpoints are off, and a connection that checkpoints
  does it on its thread every CHECKPOINT_EVERY writing statements, as SQLite would every 1,000
  pages.

The engine still sees aiosqlite; the sqlite3 connection is only ever used by one thread at a time
(nothing runs here while a trip is under way).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url

Rows = list[Any]

BUSY_TIMEOUT_MS = 10_000  # how long a statement waits for another connection's write lock
CHECKPOINT_EVERY = 200  # writing statements between two checkpoints (SQLite's: 1,000 pages)
LOCK_PAUSES_SECONDS = (0.00005, 0.001)  # the first and the longest pause before trying again
_SQLITE_BUSY = 5
_BUSY_UNTIL_RELEASED = frozenset({_SQLITE_BUSY, 261})  # SQLITE_BUSY, SQLITE_BUSY_RECOVERY


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY (or one of its extended codes): another connection has the lock."""
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_BUSY


def _worth_waiting(exc: sqlite3.OperationalError) -> bool:
    """Busy in a way that ends: another writer has the lock, or is recovering the log.

    Not SQLITE_BUSY_SNAPSHOT: a transaction that read an older state cannot write, however
    long it waits (the service's transactions take the lock up front, so it is not expected)."""
    return getattr(exc, "sqlite_errorcode", 0) in _BUSY_UNTIL_RELEASED


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose statements run at once when SQLite can run them, else in
    one trip to its thread with their rows."""

    def __init__(
        self, connector: Callable[[], sqlite3.Connection], checkpoints: bool = True
    ) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy makes aiosqlite's: never holds up exit
        self._closing: list[sqlite3.Cursor] = []
        self._trips = 0  # under way on the connection's thread
        self._checkpoints = checkpoints
        self._writes = 0  # writing statements since the last checkpoint

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._trips += 1
        try:
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        finally:
            self._trips -= 1

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on this thread if SQLite can do it without waiting, else in one trip to
        the connection's thread, waiting there for the lock."""
        connection = self._connection
        if self._trips or connection is None or not self._running:
            return await self._execute(self._waiting, fn, *args)
        changes = connection.total_changes
        try:
            result = fn(*args)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            result = await self._execute(self._waiting, fn, *args)
        if self._checkpoints and connection.total_changes != changes:
            self._writes += 1
            if self._writes >= CHECKPOINT_EVERY and not connection.in_transaction:
                self._writes = 0
                await self._execute(self._checkpoint)
        return result

    def _waiting(self, fn: Callable[..., Any], *args: Any) -> Any:
        """On the connection's thread: `fn(*args)`, waiting for another writer's lock.

        It tries again after a pause that starts at LOCK_PAUSES_SECONDS[0] and doubles up to
        the last: another process holds the lock for one statement, a fraction of a
        millisecond, where SQLite's own busy handler sleeps a whole one before trying again.
        """
        first, longest = LOCK_PAUSES_SECONDS
        pause = first
        give_up = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return fn(*args)
            except sqlite3.OperationalError as exc:
                if not _worth_waiting(exc) or time.monotonic() + pause > give_up:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, longest)

    async def each_returning(self, sql: str, parameter_sets: Sequence[Sequence[Any]]) -> Rows:
        """`sql` (one statement) once per parameter set, all or none, and the rows they
        returned, in order: for statements SQLAlchemy compiled once (`Database.rows`), past
        its execution context, whose per-statement work costs several times SQLite's own."""
        result: Rows = await self.run(self._each_returning, sql, parameter_sets)
        return result

    def _each_returning(self, sql: str, parameter_sets: Sequence[Sequence[Any]]) -> Rows:
        """On whichever thread: see `each_returning`. Several sets take the write lock first,
        as `OneTripCursor._run_many` does, so a refusal has changed nothing."""
        cursor = self.sqlite_cursor()
        connection = self._conn
        alone = len(parameter_sets) == 1 or connection.in_transaction
        rows: Rows = []
        try:
            if not alone:
                cursor.execute("BEGIN IMMEDIATE")
            try:
                for parameters in parameter_sets:
                    rows += cursor.execute(sql, parameters).fetchall()
            except BaseException:
                if not alone:
                    cursor.execute("ROLLBACK")
                raise
            if not alone:
                cursor.execute("COMMIT")
        finally:
            cursor.close()
        return rows

    def _checkpoint(self) -> None:
        """On the connection's thread: what SQLite's automatic checkpoint does."""
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").close()

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
        self._rows = await self._conn.run(self._run, sql, parameters or ())
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> OneTripCursor:
        self._rows = await self._conn.run(self._run_many, sql, list(parameters))
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
        """On whichever thread: the statement once per parameter set, all or none.

        In autocommit mode, outside a transaction, each execution would commit on its own, and
        a refusal of the second (another writer got in between) would leave the first done
        when the whole call is tried again; so the lock is taken first, where a refusal has
        changed nothing.
        """
        cursor = self._own()
        connection = self._conn._conn
        if connection.in_transaction or connection.isolation_level is not None:
            cursor.executemany(sql, parameters)  # type: ignore[arg-type]  # sqlite3's own BEGIN
            return
        cursor.execute("BEGIN IMMEDIATE")
        try:
            cursor.executemany(sql, parameters)  # type: ignore[arg-type]
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

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


def one_trip_creator(url: str, *, checkpoints: bool = True) -> Callable[[], OneTripConnection]:
    """The engine's `async_creator` for a `sqlite+aiosqlite` URL: connects with the arguments
    SQLAlchemy's own aiosqlite dialect would, with no busy timeout (the driver waits for locks
    on its thread, see above), usable from the event loop's thread, and without SQLite's
    automatic checkpoints. `checkpoints=False`: this connection never checkpoints at all."""
    [database], options = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    arguments = dict(options) | {"timeout": 0, "check_same_thread": False}

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, **arguments)
        connection.execute("PRAGMA wal_autocheckpoint=0").close()
        return connection

    return lambda: OneTripConnection(connector, checkpoints)
